"""What ``flowgraph status`` and ``flowgraph cost`` print: tables for people, JSON for scripts.

Both read a ledger only; they never import the SDK, so they start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from rich.console import Console
from rich.table import Table

from flowgraph.agent.consult_monitor import warnings_for
from flowgraph.ledger.reader import LOCK_FILE
from flowgraph.ledger.store import LedgerDoc, NodeRecord
from flowgraph.money.accounting import TOKEN_FIELDS, rollup
from flowgraph.status import RunStatus

__all__ = [
    "cost_summary",
    "is_driven",
    "print_cost",
    "print_status",
    "status_summary",
    "with_liveness",
]


def _console() -> Console:
    # Off a terminal rich assumes 80 columns and folds model ids; a pipe deserves whole lines.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def is_driven(run_dir: Path) -> bool:
    """Whether a process holds the run's lock now (a stopped or killed run holds none)."""
    lock = FileLock(run_dir / LOCK_FILE, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def with_liveness(doc: LedgerDoc, run_dir: Path) -> LedgerDoc:
    """``doc`` as it stands: a ledger left ``running`` by a process that is gone says so."""
    if doc.status != RunStatus.RUNNING or is_driven(run_dir):
        return doc
    return doc.model_copy(update={
        "current_state": "no flowgraph process is driving this run: it was stopped or killed "
        "(what had passed is kept)",
        "next_step": f"flowgraph resume {run_dir}",
    })  # fmt: skip


def status_summary(doc: LedgerDoc) -> dict[str, Any]:
    """The ledger without outputs and per-turn detail, plus counts by status."""
    counts: dict[str, int] = {}
    for record in doc.nodes.values():
        counts[record.status] = counts.get(record.status, 0) + 1
    return {
        "run_id": doc.run_id,
        "graph": doc.graph.name,
        "status": doc.status,
        "current_state": doc.current_state,
        "next_step": doc.next_step,
        "counts": counts,
        "cost_usd": cost_summary(doc)["run"]["cost_usd"],
        "features": [f.model_dump() for f in doc.features],
        "settings": doc.settings,
        "nodes": {name: r.summary() for name, r in doc.nodes.items()},
    }


def print_status(doc: LedgerDoc) -> None:
    """A table of nodes, then the run's state and next step in plain words."""
    console = _console()
    console.print(f"run [bold]{doc.run_id}[/] of graph [bold]{doc.graph.name}[/]: {doc.status}")
    table = Table()
    columns = ("node", "status", "model", "attempts", "turns", "tools", "tokens in/out", "cost",
               "advisor")  # fmt: skip
    for column in (*columns, "error"):
        table.add_column(column, overflow="fold")
    for name, r in doc.nodes.items():
        tokens = f"{r.usage.get('input_tokens', 0)}/{r.usage.get('output_tokens', 0)}"
        cost = _usd(r.cost_usd) if r.spend else ""
        table.add_row(name, r.status, r.model or "", str(r.attempts), str(r.turns or ""),
                      str(r.tool_calls or ""), tokens if r.usage else "", cost,
                      _advisor_cell(r), (r.error or "")[:100])  # fmt: skip
    console.print(table)
    console.print(f"state: {doc.current_state}")
    console.print(f"next: {doc.next_step}")
    if doc.settings:
        console.print(f"settings: {_settings_line(doc.settings)} (a resume keeps them)")


def _settings_line(settings: dict[str, Any]) -> str:
    """``max_cost_usd=0.005, prices=12 models`` — what the run started with, in one line."""
    parts = []
    for name, value in settings.items():
        if isinstance(value, dict):
            parts.append(f"{name}={len(value)} {'endpoints' if name == 'endpoints' else 'models'}")
        else:
            parts.append(f"{name}={value}")
    return ", ".join(parts)


def _advisor_cell(record: NodeRecord) -> str:
    """``2 consults, $0.0123`` — the advisor's share shown apart from the executor's."""
    ok = sum(1 for c in record.consults if c.get("outcome") == "ok")
    rows = [v for k, v in record.spend.items() if k.startswith("advisor:")]
    state = record.advisor or {}
    if not ok and not rows and not state:
        return ""
    costs = [r["cost_usd"] for r in rows]
    usd = None if any(c is None for c in costs) else sum(costs)
    left = f", {state['left']} left" if "left" in state else ""
    run = state.get("run") or {}
    if run.get("left") is not None:
        left += f" (run {run['left']})"
    return f"{ok} consults, {_usd(usd)}{left}"


def cost_summary(doc: LedgerDoc) -> dict[str, Any]:
    """Tokens and USD per node, role, model, kind (executor/advisor) and for the run, and
    how often each role consulted its advisor."""
    costs = rollup((n, r.role, r.spend) for n, r in doc.nodes.items() if r.spend)
    consults: dict[str, dict[str, Any]] = {}
    for name, record in doc.nodes.items():
        if not record.consults and not any(k.startswith("advisor:") for k in record.spend):
            continue
        row = consults.setdefault(record.role or name, {"turns": 0, "consults": 0, "usd": 0.0})
        row["turns"] += record.turns
        row["consults"] += sum(1 for c in record.consults if c.get("outcome") == "ok")
        for key, spend in record.spend.items():
            if key.startswith("advisor:") and row["usd"] is not None:
                row["usd"] = None if spend["cost_usd"] is None else row["usd"] + spend["cost_usd"]
    for row in consults.values():
        row["consult_rate"] = row["consults"] / row["turns"] if row["turns"] else 0.0
    costs["advisor_by_role"] = consults
    costs["advisor_warnings"] = [
        {"node": name, **w} for name, record in doc.nodes.items() for w in _warnings(name, record)
    ]
    return costs


def _warnings(name: str, record: NodeRecord) -> list[dict[str, str]]:
    """The node's consult warnings, from what the ledger holds (the live ones, and the checks
    run again over the finished node)."""
    state = record.advisor or {}
    found = {w["kind"]: w for w in state.get("warnings", [])}
    if state.get("max_uses"):
        again = warnings_for(name, record.consults, turns=record.turns,
                             max_turns=int(state.get("max_turns") or 0),
                             max_uses=int(state["max_uses"]), spend=record.spend)  # fmt: skip
        for w in again:
            found.setdefault(w["kind"], w)
    return list(found.values())


def print_cost(doc: LedgerDoc) -> None:
    """Tables of spend by node, role, model, endpoint and kind, and the run's total."""
    costs = cost_summary(doc)
    console = _console()
    console.print(f"cost of run [bold]{doc.run_id}[/] ({doc.status})")
    for axis in ("node", "role", "model", "endpoint", "kind"):
        rows = costs[f"by_{axis}"]
        if not rows:
            continue
        table = Table(title=f"by {axis}", title_justify="left")
        table.add_column(axis)
        for column in ("calls", "input", "output", "cache write", "cache read", "USD"):
            table.add_column(column, justify="right")
        for key, row in rows.items():
            table.add_row(key, str(row["calls"]), *(str(row[f]) for f in TOKEN_FIELDS),
                          _usd(row["cost_usd"]))  # fmt: skip
        console.print(table)
    if costs["advisor_by_role"]:
        table = Table(title="advisor consults by role", title_justify="left")
        for column in ("role", "turns", "consults", "consults per turn", "advisor USD"):
            table.add_column(column, justify="left" if column == "role" else "right")
        for role, row in costs["advisor_by_role"].items():
            table.add_row(role, str(row["turns"]), str(row["consults"]),
                          f"{row['consult_rate']:.2f}", _usd(row["usd"]))  # fmt: skip
        console.print(table)
    run = costs["run"]
    kinds = costs["by_kind"]
    if "advisor" in kinds:
        executor = kinds.get("executor", {}).get("cost_usd", 0.0)
        console.print(f"executor {_usd(executor)} + advisor {_usd(kinds['advisor']['cost_usd'])}")
    console.print(f"run total: {_usd(run['cost_usd'])} over {run['calls']} model calls")
    for warning in costs["advisor_warnings"]:
        console.print(f"warning: {warning['message']}")
    if costs["unknown_models"]:
        console.print(
            f"unknown: no price for {', '.join(costs['unknown_models'])}; totals that include "
            "them are unknown, not $0 (add prices with --prices FILE)"
        )
