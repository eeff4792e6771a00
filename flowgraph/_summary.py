"""The plain-words fields of a ledger — ``current_state``, ``next_step``, the features list and
the cost roll-ups — derived from its node records before each snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flowgraph.accounting import rollup
from flowgraph.ledger import Feature, LedgerDoc

__all__ = ["describe"]


def describe(doc: LedgerDoc, run_dir: Path | None) -> None:
    """Refresh the plain-words fields of a ledger: ``current_state``, ``next_step``, features."""
    by_status: dict[str, list[str]] = {}
    for name, record in doc.nodes.items():
        by_status.setdefault(record.status, []).append(name)
    passed = len(by_status.get("passed", []))
    parts = [f"{passed} of {len(doc.nodes)} nodes passed"]
    for status in ("running", "failed", "skipped", "interrupted", "pending"):
        names = by_status.get(status, [])
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            parts.append(f"{status}: {', '.join(names[:5])}{more}")
    costs = rollup((n, r.role, r.spend) for n, r in doc.nodes.items() if r.spend)
    doc.costs = costs
    if costs["run"]["calls"]:
        usd = costs["run"]["cost_usd"]
        parts.append("cost unknown (unpriced models)" if usd is None else f"cost ${usd:.4f}")
    doc.current_state = f"run {doc.status}; " + "; ".join(parts)
    doc.next_step = _next_step(doc.status, by_status, run_dir)
    doc.features = [
        Feature.model_construct(name=n, passes=r.status == "passed") for n, r in doc.nodes.items()
    ]


def _next_step(status: str, by_status: Mapping[str, list[str]], run_dir: Path | None) -> str:
    where = str(run_dir) if run_dir else "<run dir>"
    if status == "passed":
        return "nothing left to do: every node passed; outputs are in ledger.json"
    if status == "running":
        return f"the run is in progress; `flowgraph status {where}` shows it"
    if status == "budget_exceeded":
        return (
            f"the budget stopped the run; raise it and resume: "
            f"`flowgraph resume {where} --max-cost-usd <more>`"
        )
    failed = by_status.get("failed", [])
    if failed:
        return (
            f"fix the failure of {', '.join(failed[:3])} (see its error), then "
            f"`flowgraph resume {where}` re-runs it and the nodes it blocked"
        )
    return f"`flowgraph resume {where}` continues where the run stopped"
