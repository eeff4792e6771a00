"""Tests for flowgraph.money.pricing: rates, cache multipliers, iterations and unknown models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowgraph.errors import ConfigError
from flowgraph.models.seam import Usage
from flowgraph.money.pricing import DEFAULT_PRICING, Cost, ModelPrice, Pricing


def test_default_prices_cover_alias_targets_and_4x_ids() -> None:
    for model in (
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-opus-4-7",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
    ):
        assert model in DEFAULT_PRICING


def test_input_and_output_priced_per_million_tokens() -> None:
    cost = DEFAULT_PRICING.price(Usage(1_000_000, 1_000_000), "claude-sonnet-4-6")
    assert cost.usd == pytest.approx(18.0)
    assert cost.unknown == ()
    assert cost.by_model == {"claude-sonnet-4-6": pytest.approx(18.0)}


def test_cache_write_and_read_use_multipliers() -> None:
    usage = Usage(cache_creation_input_tokens=1_000_000, cache_read_input_tokens=1_000_000)
    assert DEFAULT_PRICING.price(usage, "claude-sonnet-4-6").usd == pytest.approx(3.75 + 0.3)
    one_hour = Pricing.default().with_prices({})
    one_hour.cache_write_ttl = "1h"
    assert one_hour.price(usage, "claude-sonnet-4-6").usd == pytest.approx(6.0 + 0.3)


def test_unknown_model_cost_is_unknown_never_zero() -> None:
    cost = DEFAULT_PRICING.price(Usage(10, 10), "some-gateway/model-x")
    assert cost.usd is None
    assert cost.unknown == ("some-gateway/model-x",)
    assert not cost.is_known


def test_dated_snapshot_priced_like_its_base_id() -> None:
    cost = DEFAULT_PRICING.price(Usage(1_000_000, 0), "claude-haiku-4-5-20251001")
    assert cost.usd == pytest.approx(0.8)


def test_iterations_priced_at_each_models_rates_without_double_counting() -> None:
    usage = Usage(
        input_tokens=120,
        output_tokens=40,
        iterations=(
            {"type": "message", "input_tokens": 100, "output_tokens": 20},
            {
                "type": "advisor_message",
                "model": "claude-opus-4-7",
                "input_tokens": 150,
                "output_tokens": 60,
            },
            {"type": "message", "input_tokens": 20, "output_tokens": 20},
        ),
    )
    cost = DEFAULT_PRICING.price(usage, "claude-sonnet-4-6")
    sonnet = (120 * 3 + 40 * 15) / 1e6
    opus = (150 * 15 + 60 * 75) / 1e6
    assert cost.usd == pytest.approx(sonnet + opus)
    assert cost.by_model["claude-opus-4-7"] == pytest.approx(opus)


def test_iteration_from_unpriced_model_makes_total_unknown() -> None:
    usage = Usage(iterations=({"type": "fallback_message", "model": "mystery", "input_tokens": 5},))
    cost = DEFAULT_PRICING.price(usage, "claude-sonnet-4-6")
    assert cost.usd is None and cost.unknown == ("mystery",)


def test_iteration_cache_creation_split_by_ttl() -> None:
    entry = {
        "type": "message",
        "cache_creation_input_tokens": 2_000_000,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 1_000_000,
            "ephemeral_1h_input_tokens": 1_000_000,
        },
    }
    cost = DEFAULT_PRICING.price(Usage(iterations=(entry,)), "claude-sonnet-4-6")
    assert cost.usd == pytest.approx(3.75 + 6.0)


def test_costs_add_and_unknown_propagates() -> None:
    total = Cost(1.0, (), 1.0, {"a": 1.0}) + Cost(None, ("b",))
    assert total.usd is None and total.known_usd == 1.0 and total.unknown == ("b",)
    assert (Cost(1.0, (), 1.0, {"a": 1.0}) + Cost(2.0, (), 2.0, {"a": 2.0})).by_model == {"a": 3.0}


def test_with_prices_overrides_from_code() -> None:
    pricing = DEFAULT_PRICING.with_prices(
        {"claude-sonnet-4-6": {"input": 1, "output": 2}, "local": ModelPrice(0.0, 0.0)}
    )
    assert pricing.price(Usage(1_000_000, 1_000_000), "claude-sonnet-4-6").usd == pytest.approx(3)
    assert pricing.price(Usage(5, 5), "local").usd == 0.0
    assert DEFAULT_PRICING.price(Usage(1_000_000), "claude-sonnet-4-6").usd == pytest.approx(3)


def test_from_toml_and_json_files(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text('[models."my-model"]\ninput = 2.0\noutput = 4.0\ncache_read = 0.5\n')
    pricing = Pricing.from_file(toml)
    usage = Usage(1_000_000, 0, 0, 1_000_000)
    assert pricing.price(usage, "my-model").usd == pytest.approx(2.5)
    assert "claude-opus-4-7" in pricing
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"my-model": {"input": 1, "output": 1}}))
    only = Pricing.from_file(js, include_defaults=False)
    assert "claude-opus-4-7" not in only and "my-model" in only


@pytest.mark.parametrize(
    "content", ['{"m": {"input": 1}}', '{"m": {"input": -1, "output": 1}}', "not json", "[1]"]
)
def test_bad_price_file_raises_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        Pricing.from_file(path)


def test_missing_price_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read price file"):
        Pricing.from_file(tmp_path / "nope.toml")
