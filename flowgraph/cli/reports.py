"""What ``flowgraph status`` and ``flowgraph cost`` print: tables for people, JSON for scripts.

Both read the run directory only (the ledger; status also the inbox, for decisions no run has
acted on yet) and never take the run over; they never import the SDK, so they start fast.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from rich.console import Console
from rich.table import Table

from flowgraph.agent.consult_monitor import warnings_for
from flowgraph.cli.tables import Column, add_row, fit_table, notes, styled
from flowgraph.declare.names import local_of
from flowgraph.errors import FlowgraphError
from flowgraph.execute.summary import describe
from flowgraph.ledger.reader import LOCK_FILE, inbox_messages
from flowgraph.ledger.store import LedgerDoc, NodeRecord
from flowgraph.money.accounting import TOKEN_FIELDS, rollup
from flowgraph.status import RunStatus

__all__ = [
    "as_it_stands",
    "cost_summary",
    "is_driven",
    "print_cost",
    "print_status",
    "status_summary",
    "substitutions",
    "tokens_in",
]


def _console() -> Console:
    # Off a terminal rich assumes 80 columns; a pipe deserves whole lines unless COLUMNS says.
    wide = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(highlight=False, width=None if wide else 160)


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


def as_it_stands(doc: LedgerDoc, run_dir: Path) -> LedgerDoc:
    """``doc`` as it stands now: with the approvals and rejections people sent that no run has
    acted on yet, its plain words said again for this directory, and a ledger left ``running``
    by a process that is gone saying so."""
    doc = _with_decisions(doc, run_dir)
    if doc.status != RunStatus.RUNNING or is_driven(run_dir):
        return doc
    return doc.model_copy(update={
        "current_state": "no flowgraph process is driving this run: it was stopped or killed "
        "(what had passed is kept)",
        "next_step": f"flowgraph resume {run_dir}",
    })  # fmt: skip


def _with_decisions(doc: LedgerDoc, run_dir: Path) -> LedgerDoc:
    """A copy of ``doc`` with the decisions waiting in its inbox recorded (as the next run
    will record them), and ``current_state``/``next_step`` said again."""
    try:
        unread, _ = inbox_messages(run_dir, doc.inbox_offset, doc.nodes)
    except FlowgraphError:
        unread = []  # a broken inbox is the run's to report when it reads it
    nodes = dict(doc.nodes)
    for message in unread:
        if message.kind in ("approve", "reject") and message.node in nodes:
            decision = {"kind": message.kind, "text": message.text, "at": message.at}
            nodes[message.node] = dataclasses.replace(nodes[message.node], decision=decision)
    copy = doc.model_copy(update={"nodes": nodes})
    describe(copy, run_dir)
    return copy


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
        "substitutions": [
            {"node": name, **entry} for name, r in doc.nodes.items() for entry in _swaps(r)
        ],
        "nodes": {name: r.summary() for name, r in doc.nodes.items()},
    }


def print_status(doc: LedgerDoc, console: Console | None = None) -> None:
    """The run's line, a table of its records (one line each, fitted to the terminal), notes
    under it (errors, waits, winners, substitutions, advisor use), then the state and next step
    in plain words."""
    console = console or _console()
    console.print(f"run [bold]{doc.run_id}[/] of graph [bold]{doc.graph.name}[/]: {doc.status}")
    columns = [Column("node", 9, always=True), Column("status", 9, always=True),
               Column("model", 8), Column("attempts", 2, "right"), Column("turns", 4, "right"),
               Column("tools", 3, "right"), Column("tokens in/out", 5, "right"),
               Column("cost", 7, "right")]  # fmt: skip
    for name, record in doc.nodes.items():
        cells = _status_row(doc, name, record)
        add_row(columns, cells)
    table, dropped = fit_table(columns, console)
    console.print(table)
    if dropped:
        console.print(f"[dim]hidden to fit {console.width} columns: {', '.join(dropped)} "
                      "(widen the terminal, or use --json)[/]")  # fmt: skip
    for line in notes([n for name, r in doc.nodes.items() for n in _notes(doc, name, r)]):
        console.print(line)
    console.print(f"state: {doc.current_state}")
    console.print(f"next: {doc.next_step}")
    if doc.settings:
        console.print(f"settings: {_settings_line(doc.settings)} (a resume keeps them)")


def _status_row(doc: LedgerDoc, name: str, r: NodeRecord) -> list[str]:
    usage = r.usage
    tokens = f"{tokens_in(usage)}/{usage.get('output_tokens', 0)}" if usage else ""
    return [name, _status_cell(doc, name, r), r.model or "", _more_than_one(r.attempts),
            str(r.turns or ""), str(r.tool_calls or ""), tokens,
            _usd(r.cost_usd) if r.spend else ""]  # fmt: skip


def _more_than_one(attempts: int) -> str:
    return str(attempts) if attempts > 1 else ""  # a first attempt is the rule, not news


def tokens_in(usage: dict[str, int]) -> int:
    """Every input token of a call: uncached, read from the cache and written to it (a cached
    prompt bills almost nothing as ``input_tokens``)."""
    return sum(int(usage.get(k) or 0) for k in TOKEN_FIELDS if k != "output_tokens")


def _status_cell(doc: LedgerDoc, name: str, r: NodeRecord) -> str:
    """The status, coloured; a race contender says whether its check failed, and whether it
    won or lost."""
    text = str(r.status)
    parent = doc.nodes.get(r.parent or "")
    winner = parent.winner if parent is not None else None
    if r.check_passed is False:
        text = "check failed"
    elif winner is not None and r.status == "passed":
        # A contender stopped once another won may have passed its work and never been checked.
        text = "passed, won" if winner == local_of(name) else "passed, lost"
    return styled(text)


def _notes(doc: LedgerDoc, name: str, r: NodeRecord) -> list[tuple[str, str]]:
    """What a record needs said in words: its error or why it waits, a race's winner, a gate's
    decision, the models that answered instead of the one asked, its advisor's use."""
    found: list[tuple[str, str]] = []
    decision = r.decision or {}
    said = {"approve": "approved", "reject": "rejected"}.get(str(decision.get("kind")), "")
    if said and r.status == "waiting_approval":  # sent, and not acted on yet
        note = f": {decision['text']}" if decision.get("text") else ""
        found.append((name, f"{said} by a person{note}; the next resume acts on it"))
    elif r.error:
        # Waiting, skipped or rejected is what should happen, not an error to fix.
        plain = r.status in ("waiting_approval", "incomplete", "skipped") or said == "rejected"
        found.append((name, r.error if plain else f"error: {r.error}"))
    elif said:
        note = f": {decision['text']}" if decision.get("text") else ""
        found.append((name, f"{said} by a person{note}"))
    if r.winner:
        found.append((name, f"winner: {r.winner}"))
    found.extend((name, text) for text in substitutions(r))
    advisor = _advisor_cell(r)
    if advisor:
        found.append((name, f"advisor: {advisor}"))
    return found


def substitutions(record: NodeRecord) -> list[str]:
    """The turns another model answered than the one asked, in words: the router's fallbacks
    (the model asked failed) and the endpoint's own substitutions (it answered with another
    model, which is what was recorded and priced). Runs of turns alike are said once."""
    said: list[tuple[list[int], str]] = []
    for swap in _swaps(record):
        served = swap["served"]
        if swap["by"] == "endpoint":
            text = (
                f"answered by {served}, though {swap['requested']} was asked (the endpoint "
                "chose it; recorded and priced as the model that answered)"
            )
        else:
            text = f"answered by fallback {served} ({'; '.join(swap['tried'])})"
        turn = int(swap["turn"] or 0)
        if said and said[-1][1] == text and said[-1][0][-1] == turn - 1:
            said[-1][0].append(turn)
        else:
            said.append(([turn], text))
    return [f"{_turns(turns)} {text}" for turns, text in said]


def _swaps(record: NodeRecord) -> list[dict[str, Any]]:
    """The turns another model answered, as data: ``by`` says whether the router's fallback
    chain or the endpoint itself chose it."""
    found: list[dict[str, Any]] = []
    for entry in record.served:
        tried = list(entry.get("fallbacks") or ())  # failed, or skipped (its breaker open)
        turn, served = entry.get("turn"), entry.get("model")
        if entry.get("requested"):
            found.append({"turn": turn, "requested": entry["requested"], "served": served,
                          "by": "endpoint"})  # fmt: skip
        elif tried:
            found.append({"turn": turn, "requested": tried[0]["model"], "served": served,
                          "by": "fallback",
                          "tried": [f"{f['model']}: {f.get('reason') or f.get('outcome')}"
                                    for f in tried]})  # fmt: skip
    return found


def _turns(turns: list[int]) -> str:
    return f"turn {turns[0]}" if len(turns) == 1 else f"turns {turns[0]}-{turns[-1]}"


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
    return f"{ok} consult{'' if ok == 1 else 's'}, {_usd(usd)}{left}"


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


def _print_spend(console: Console, axis: str, rows: dict[str, Any]) -> None:
    """One ``by <axis>`` table of tokens and USD, fitted to the terminal."""
    # Whole ids or no column: two models cut to "claude-sonnet…" would read as one.
    columns = [Column(axis, 9, always=True), Column("calls", 5, "right"),
               *(Column(header, keep, "right") for header, keep in zip(
                   ("input", "output", "cache write", "cache read"), (4, 6, 2, 3), strict=True)),
               Column("USD", 9, "right", always=True)]  # fmt: skip
    for key, row in rows.items():
        cells = (key, str(row["calls"]), *(str(row[f]) for f in TOKEN_FIELDS),
                 _usd(row["cost_usd"]))  # fmt: skip
        add_row(columns, cells)
    table, dropped = fit_table(columns, console)
    hidden = f" [dim](hidden to fit: {', '.join(dropped)})[/]" if dropped else ""
    console.print(f"[bold]by {axis}[/]{hidden}")
    console.print(table)


def print_cost(doc: LedgerDoc) -> None:
    """Tables of spend by node, role, model, endpoint and kind, and the run's total."""
    costs = cost_summary(doc)
    console = _console()
    console.print(f"cost of run [bold]{doc.run_id}[/] ({doc.status})")
    for axis in ("node", "role", "model", "endpoint", "kind"):
        rows = costs[f"by_{axis}"]
        if not rows:
            continue
        _print_spend(console, axis, rows)
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
