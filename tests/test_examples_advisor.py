"""examples/advisor_team.py: a haiku executor with an opus advisor, offline through the emulator."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import CliResult

from flowgraph import Graph
from flowgraph.ledger.store import Ledger
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.money.pricing import DEFAULT_PRICING

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "advisor_team.py"
_fresh = itertools.count()


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_advisor_{next(_fresh)}", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    module = _load()
    yield module
    if module.emulator is not None:
        module.emulator.stop()


def test_offline_the_module_holds_one_graph_on_the_emulator(example: ModuleType) -> None:
    graphs = [v for v in vars(example).values() if isinstance(v, Graph)]
    assert graphs == [example.graph]
    assert isinstance(example.client, AnthropicModel)
    assert example.graph.client is example.client
    assert example.client.base_url == example.emulator.base_url
    example.graph.validate()


def test_with_a_key_the_real_api_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-used")
    module = _load()
    assert module.client is None and module.emulator is None
    assert module.graph.client is None


def test_the_haiku_coder_consults_opus_natively_and_pays_opus_rates(
    example: ModuleType, tmp_path: Path
) -> None:
    result = example.graph.run_sync(run_dir=tmp_path / "run")

    assert result.status == "passed", result.errors
    assert result["review"].startswith("APPROVE")
    assert "sorted(xs)" in result["fix"]
    fix = Ledger.read(tmp_path / "run").nodes["fix"]
    assert fix.model == "claude-haiku-5-5"
    [consult] = fix.consults
    assert consult["mode"] == "native" and consult["outcome"] == "ok"
    assert consult["model"] == "claude-opus-5-5"
    assert consult["advice"] == example.ADVICE
    assert consult["input_tokens"] > 0 and consult["output_tokens"] > 0
    advisor = fix.spend["advisor:claude-opus-5-5"]
    assert advisor["output_tokens"] == consult["output_tokens"]
    opus = DEFAULT_PRICING.get("claude-opus-5-5")
    assert opus is not None and (opus.input, opus.output) == (15.0, 75.0)
    expected = (advisor["input_tokens"] * 15.0 + advisor["output_tokens"] * 75.0) / 1e6
    assert advisor["cost_usd"] == pytest.approx(expected)
    assert consult["cost_usd"] == pytest.approx(expected)
    # The native request carried the server tool and its beta header.
    sent = [r for r in example.emulator.requests if r.model == "claude-haiku-5-5"]
    assert any(t.get("type") == "advisor_20260301" for t in sent[1].body["tools"])
    assert "advisor-tool-2026-03-01" in sent[1].headers["anthropic-beta"]


def test_flowgraph_run_and_show_work_on_the_example(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    run = cli("run", str(EXAMPLE), "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "passed" in run.stdout
    assert Ledger.read(tmp_path / "run").nodes["fix"].consults[0]["mode"] == "native"
    show = cli("show", str(EXAMPLE), cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "fix --> review" in show.stdout
