"""Model prices and the one function that turns ``Usage`` into money: ``Pricing.price``.

Prices are configuration, not facts of the SDK: the defaults below are the published list prices
per million tokens (USD) at the time of writing -- opus $15 in / $75 out, sonnet $3 / $15, haiku
$0.80 / $4 -- applied to the ids the aliases map to and to the claude-*-4-x ids. **Check current
prices** and override them from code (``Pricing({...})``, ``pricing.with_prices(...)``) or from a
file (``Pricing.from_file("prices.toml")``).

Cache multipliers on the input price: a 5-minute cache write costs 1.25x, a 1-hour write 2x, a
cache read 0.1x, unless a model's entry sets its own rates.

A model with no price makes the cost **unknown** (``Cost.usd is None`` and the id is listed in
``Cost.unknown``); it is never silently $0.

When ``usage.iterations`` is present (advisor consults, server-side fallbacks), the entries are
the billable breakdown: each is priced at the rates of the model that produced it (``model`` in
the entry, else the requested model) and the top-level counts are not added again.

File format (JSON or TOML), either at the top level or under ``models``::

    [models."claude-sonnet-4-6"]
    input = 3.0          # USD per million input tokens
    output = 15.0
    cache_write_1h = 6.0 # optional; defaults to the multipliers above
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from flowgraph.datafiles import read_settings_file
from flowgraph.errors import ConfigError
from flowgraph.models.endpoints import prefix_of
from flowgraph.models.seam import Usage

__all__ = ["DEFAULT_PRICING", "Cost", "ModelPrice", "Pricing"]

CacheTTL = Literal["5m", "1h"]

_MTOK = 1_000_000
# A dated snapshot id such as claude-sonnet-4-5-20250929 is priced like its undated id.
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices in USD per million tokens.

    Attributes:
        input: uncached input tokens.
        output: output tokens.
        cache_write_5m: 5-minute cache writes; None means 1.25x ``input``.
        cache_write_1h: 1-hour cache writes; None means 2x ``input``.
        cache_read: cache reads; None means 0.1x ``input``.
    """

    input: float
    output: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"price {name}={value!r} must be a number >= 0 (USD per MTok)")

    @property
    def write_5m(self) -> float:
        """The 5-minute cache-write rate."""
        return self.input * 1.25 if self.cache_write_5m is None else self.cache_write_5m

    @property
    def write_1h(self) -> float:
        """The 1-hour cache-write rate."""
        return self.input * 2.0 if self.cache_write_1h is None else self.cache_write_1h

    @property
    def read(self) -> float:
        """The cache-read rate."""
        return self.input * 0.1 if self.cache_read is None else self.cache_read


@dataclass(frozen=True, slots=True)
class Cost:
    """What some usage cost.

    Attributes:
        usd: the total in USD, or None when any part was produced by a model with no price.
        unknown: the model ids that had no price (sorted, no repeats).
        known_usd: the sum of the parts that could be priced (equals ``usd`` when nothing is
            unknown); useful to show a lower bound next to the "unknown" flag.
        by_model: USD per model id that could be priced (the advisor's share shows here).
    """

    usd: float | None
    unknown: tuple[str, ...] = ()
    known_usd: float = 0.0
    by_model: Mapping[str, float] = field(default_factory=dict)

    def __add__(self, other: Cost) -> Cost:
        unknown = tuple(sorted(set(self.unknown) | set(other.unknown)))
        known = self.known_usd + other.known_usd
        by_model = dict(self.by_model)
        for model, usd in other.by_model.items():
            by_model[model] = by_model.get(model, 0.0) + usd
        return Cost(None if unknown else known, unknown, known, by_model)

    @property
    def is_known(self) -> bool:
        """True when every part had a price."""
        return not self.unknown


_OPUS = ModelPrice(15.0, 75.0)
_SONNET = ModelPrice(3.0, 15.0)
_HAIKU = ModelPrice(0.80, 4.0)

_DEFAULT_PRICES: dict[str, ModelPrice] = {
    **dict.fromkeys(
        [
            "claude-opus-5-5",
            "claude-opus-5",
            "claude-opus-4-8",
            "claude-opus-4-7",
            "claude-opus-4-6",
            "claude-opus-4-5",
            "claude-opus-4-1",
            "claude-opus-4-0",
        ],
        _OPUS,
    ),
    **dict.fromkeys(
        [
            "claude-sonnet-5-5",
            "claude-sonnet-5",
            "claude-sonnet-4-6",
            "claude-sonnet-4-5",
            "claude-sonnet-4-0",
        ],
        _SONNET,
    ),
    **dict.fromkeys(["claude-haiku-5-5", "claude-haiku-4-5"], _HAIKU),
}

PriceLike = ModelPrice | Mapping[str, Any]


def _to_price(model: str, value: PriceLike) -> ModelPrice:
    if isinstance(value, ModelPrice):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"price for {model!r} is {type(value).__name__}; give a table with input and output"
        )
    allowed = {"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}
    extra = set(value) - allowed
    if extra or "input" not in value or "output" not in value:
        raise ConfigError(
            f"price for {model!r} has keys {sorted(value)}; needs input and output "
            f"(USD per MTok) and optionally {', '.join(sorted(allowed - {'input', 'output'}))}"
        )
    try:
        return ModelPrice(**dict(value))
    except ConfigError as err:
        raise ConfigError(f"price for {model!r}: {err}") from None


class Pricing:
    """A price table: model id -> ``ModelPrice``.

    Args:
        prices: the table; values are ``ModelPrice`` or mappings with the same field names.
        cache_write_ttl: how to price ``cache_creation_input_tokens`` when the usage does not
            say which TTL was written ("5m" or "1h").
    """

    def __init__(
        self, prices: Mapping[str, PriceLike] | None = None, *, cache_write_ttl: CacheTTL = "5m"
    ) -> None:
        self._prices = {m: _to_price(m, p) for m, p in (prices or {}).items()}
        self.cache_write_ttl: CacheTTL = cache_write_ttl

    @classmethod
    def default(cls) -> Pricing:
        """The built-in table (published list prices; check them)."""
        return cls(_DEFAULT_PRICES)

    @classmethod
    def from_file(cls, path: str | Path, *, include_defaults: bool = True) -> Pricing:
        """Read a JSON or TOML price file (see the module docstring for the format).

        Args:
            path: a ``.json`` or ``.toml`` file.
            include_defaults: start from the built-in table and override it with the file.

        Raises:
            ConfigError: the file is missing, unreadable, or holds a bad entry.
        """
        path = Path(path)
        data = read_settings_file(path, "price file", default_format="json",
                                  fix="fix or remove it")  # fmt: skip
        table = data.get("models", data) if isinstance(data, dict) else None
        if not isinstance(table, dict):
            raise ConfigError(f"price file {path} must hold a table of model id -> prices")
        base = cls.default() if include_defaults else cls()
        return base.with_prices(table)

    def with_prices(self, prices: Mapping[str, PriceLike]) -> Pricing:
        """A copy of this table with ``prices`` added or replacing existing entries."""
        merged: dict[str, PriceLike] = {**self._prices, **prices}
        return Pricing(merged, cache_write_ttl=self.cache_write_ttl)

    def table(self) -> dict[str, dict[str, float | None]]:
        """The table as JSON data (model id -> price fields), as a ledger records it."""
        return {model: asdict(price) for model, price in self._prices.items()}

    def get(self, model: str) -> ModelPrice | None:
        """The price of ``model``, also for dated snapshot ids; None when it has none."""
        if model in self._prices:
            return self._prices[model]
        found = self._prices.get(_DATE_SUFFIX.sub("", model))
        prefix = prefix_of(model)
        if found is None and prefix:
            # A price given for "gateway:model" wins; else the model's own price applies.
            return self.get(model[len(prefix) :])
        return found

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def price(self, usage: Usage, model: str) -> Cost:
        """The cost of ``usage`` from a call to ``model``.

        Args:
            usage: the call's usage (or a sum of usages of calls to the same model).
            model: the model that was asked for; iteration entries with their own ``model``
                are priced at that model instead.
        """
        if not usage.iterations:
            return self._price_counts(model, usage.to_dict(), None)
        total = Cost(0.0)
        for entry in usage.iterations:
            served = str(entry.get("model") or model)
            total = total + self._price_counts(served, entry, entry.get("cache_creation"))
        return total

    def _price_counts(self, model: str, counts: Mapping[str, Any], split: Any) -> Cost:
        price = self.get(model)
        if price is None:
            return Cost(None, (model,))
        write_tokens = int(counts.get("cache_creation_input_tokens") or 0)
        if isinstance(split, Mapping):
            # The API's per-TTL breakdown, when present, beats the table-wide assumption.
            w5 = int(split.get("ephemeral_5m_input_tokens") or 0)
            w1 = int(split.get("ephemeral_1h_input_tokens") or 0)
        elif self.cache_write_ttl == "1h":
            w5, w1 = 0, write_tokens
        else:
            w5, w1 = write_tokens, 0
        usd = (
            int(counts.get("input_tokens") or 0) * price.input
            + int(counts.get("output_tokens") or 0) * price.output
            + int(counts.get("cache_read_input_tokens") or 0) * price.read
            + w5 * price.write_5m
            + w1 * price.write_1h
        ) / _MTOK
        if not math.isfinite(usd):
            raise ConfigError(f"price of {model!r} gives a non-finite cost; check the table")
        return Cost(usd, (), usd, {model: usd})

    def __repr__(self) -> str:
        return f"Pricing({len(self._prices)} models)"


DEFAULT_PRICING = Pricing.default()
