"""Accounting: where every token of a call went, by kind (executor or advisor) and model.

A call's ``usage`` may hold ``iterations`` (advisor consults, server-side fallbacks); each entry
is counted under the model that produced it. A ``Spend`` keeps token totals per (kind, model)
row and prices each row from its totals, so a row's cost is exactly its tokens times the
model's prices; a row whose model has no price has cost ``None`` (unknown, never $0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flowgraph.models.endpoints import endpoint_of
from flowgraph.models.seam import Usage
from flowgraph.money.pricing import Pricing

__all__ = ["TOKEN_FIELDS", "Spend", "rollup"]

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_KIND_OF_ITERATION = {"advisor_message": "advisor"}


def split_usage(
    usage: Usage, served_model: str, kind: str = "executor"
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(kind, model, counts)`` parts of one call's usage (``kind`` for a call without
    iterations: ``"advisor"`` for a consult flowgraph made itself)."""
    if not usage.iterations:
        return [(kind, served_model, usage.to_dict())]
    parts = []
    for entry in usage.iterations:
        kind = _KIND_OF_ITERATION.get(str(entry.get("type")), "executor")
        parts.append((kind, str(entry.get("model") or served_model), entry))
    return parts


class Spend:
    """Token and dollar totals of one node, per ``kind:model`` row.

    Args:
        rows: rows recorded earlier (from the ledger), to keep counting across attempts.
    """

    def __init__(self, rows: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (rows or {}).items()}

    def add(
        self, usage: Usage, served_model: str, pricing: Pricing, kind: str = "executor"
    ) -> None:
        """Count one call (a response whose iterations touch a row twice is one call of it)."""
        counted: set[str] = set()
        for part_kind, model, counts in split_usage(usage, served_model, kind):
            key = f"{part_kind}:{model}"
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = {"kind": part_kind, "model": model, "calls": 0}
                row.update(dict.fromkeys(TOKEN_FIELDS, 0))
            if key not in counted:
                counted.add(key)
                row["calls"] += 1
            for name in TOKEN_FIELDS:
                row[name] += int(counts.get(name) or 0)
            tokens = Usage(*(row[name] for name in TOKEN_FIELDS))
            row["cost_usd"] = pricing.price(tokens, model).usd

    @property
    def usage(self) -> dict[str, int]:
        """Token totals over every row."""
        return {name: sum(r[name] for r in self.rows.values()) for name in TOKEN_FIELDS}

    @property
    def cost_usd(self) -> float | None:
        """The total, or None when any row's model has no price."""
        costs = [r["cost_usd"] for r in self.rows.values()]
        return None if any(c is None for c in costs) else float(sum(costs))

    @property
    def known_usd(self) -> float:
        """What could be priced (a lower bound when ``cost_usd`` is None)."""
        return float(sum(r["cost_usd"] or 0.0 for r in self.rows.values()))


def rollup(
    nodes: Iterable[tuple[str, str | None, Mapping[str, Mapping[str, Any]]]],
) -> dict[str, Any]:
    """Totals per node, role, model, endpoint, kind and for the run from ``(node, role, rows)``
    triples (the endpoint is the model's ``name:`` prefix, ``default`` without one)."""
    by: dict[str, dict[str, dict[str, Any]]] = {
        "node": {}, "role": {}, "model": {}, "endpoint": {}, "kind": {}
    }  # fmt: skip
    run: dict[str, Any] = _empty()
    unknown: set[str] = set()
    for node, role, rows in nodes:
        for row in rows.values():
            if row.get("cost_usd") is None:
                unknown.add(row["model"])
            for axis, key in (
                ("node", node),
                ("role", role or node),
                ("model", row["model"]),
                ("endpoint", endpoint_of(row["model"])),
                ("kind", row["kind"]),
            ):
                _add(by[axis].setdefault(key, _empty()), row)
            _add(run, row)
    return {"run": run, **{f"by_{axis}": table for axis, table in by.items()},
            "unknown_models": sorted(unknown)}  # fmt: skip


def _empty() -> dict[str, Any]:
    return {"calls": 0, **dict.fromkeys(TOKEN_FIELDS, 0), "cost_usd": 0.0}


def _add(total: dict[str, Any], row: Mapping[str, Any]) -> None:
    total["calls"] += row["calls"]
    for name in TOKEN_FIELDS:
        total[name] += row[name]
    if total["cost_usd"] is not None:
        total["cost_usd"] = (
            None if row.get("cost_usd") is None else total["cost_usd"] + row["cost_usd"]
        )
