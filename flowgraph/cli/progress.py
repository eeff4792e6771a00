"""The CLI's view of a running graph: a live rich table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from flowgraph.events import (
    AdvisorConsulted,
    AdvisorWarning,
    Event,
    FallbackTaken,
    ModelTurn,
    NodeFinished,
    NodeRetrying,
    NodeStarted,
    RunFinished,
    RunStarted,
    ToolCalled,
)

__all__ = ["Progress"]

_STYLE = {
    "passed": "green",
    "failed": "red",
    "running": "yellow",
    "skipped": "dim",
    "not_taken": "dim",
    "interrupted": "magenta",
    "pending": "white",
}


@dataclass
class _Row:
    status: str = "pending"
    model: str = ""
    turns: int = 0
    tools: int = 0
    started: float | None = None
    ended: float | None = None
    note: str = ""
    advisor: str = ""  # uses left: "2 left (run 5)"

    def elapsed(self) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or time.monotonic()) - self.started:5.1f}s"


def _advisor(row: _Row, event: AdvisorConsulted | AdvisorWarning) -> None:
    if isinstance(event, AdvisorWarning):
        row.note = event.message
    elif event.uses_left is not None:
        run = "" if event.run_uses_left is None else f" (run {event.run_uses_left})"
        row.advisor = f"{event.uses_left} left{run}"


class Progress:
    """Consumes run events; use as a context manager around the run."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live_mode = self.stream.isatty() if live is None else live
        self.console = Console(file=self.stream, highlight=False)
        self.rows: dict[str, _Row] = {}
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_mode:
            self._live = Live(self._table(), console=self.console, refresh_per_second=8,
                              get_renderable=self._table)  # fmt: skip
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        self._update(event)
        if not self.live_mode:
            line = self._line(event)
            if line:
                print(line, file=self.stream, flush=True)

    def _update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            for name in event.nodes:
                self.rows[name] = _Row(model=event.models.get(name, ""))
            return
        row = self.rows.get(getattr(event, "node", ""))
        if row is None:
            return
        if isinstance(event, NodeStarted):
            row.status, row.started, row.ended, row.turns, row.tools = (
                "running", time.monotonic(), None, 0, 0
            )  # fmt: skip
        elif isinstance(event, ModelTurn):
            row.turns, row.model = event.turn, event.model
        elif isinstance(event, ToolCalled):
            row.tools += 1
        elif isinstance(event, AdvisorConsulted | AdvisorWarning):
            _advisor(row, event)
        elif isinstance(event, FallbackTaken):
            row.note = f"fallback {event.from_model} -> {event.to_model} ({event.reason})"
        elif isinstance(event, NodeRetrying):
            row.note = f"retry {event.attempt}: {event.error}"
        elif isinstance(event, NodeFinished):
            row.status = "passed (reused)" if event.reused else event.status
            row.ended = time.monotonic()
            if event.error:
                row.note = event.error

    def _table(self) -> Table:
        table = Table(title="flowgraph run", expand=False)
        for column in ("node", "status", "model", "turns", "tools", "advisor", "elapsed", "note"):
            table.add_column(column, overflow="fold")
        for name, row in self.rows.items():
            style = _STYLE.get(row.status.split()[0], "white")
            table.add_row(name, f"[{style}]{row.status}[/]", row.model, str(row.turns or ""),
                          str(row.tools or ""), row.advisor, row.elapsed(),
                          row.note[:80])  # fmt: skip
        return table

    def _line(self, event: Event) -> str:
        stamp = time.strftime("%H:%M:%S")
        if isinstance(event, RunStarted):
            todo, total = len(event.to_run), len(event.nodes)
            return f"[{stamp}] run {event.run_id}: {todo} of {total} nodes to run"
        if isinstance(event, NodeStarted):
            return (
                f"[{stamp}] {event.node}: started (attempt {event.attempt}) {event.model}".rstrip()
            )
        if isinstance(event, FallbackTaken):
            hop = f"{event.from_model} -> {event.to_model}"
            return f"[{stamp}] {event.node}: fallback {hop} ({event.reason})"
        if isinstance(event, NodeRetrying):
            return f"[{stamp}] {event.node}: retrying in {event.delay:g}s after: {event.error}"
        if isinstance(event, NodeFinished):
            row = self.rows.get(event.node, _Row())
            if event.reused:
                return f"[{stamp}] {event.node}: passed earlier, reused"
            detail = f" after {row.turns} turns, {row.tools} tool calls" if row.turns else ""
            error = f": {event.error}" if event.error else ""
            return f"[{stamp}] {event.node}: {event.status}{detail}{error}"
        if isinstance(event, AdvisorConsulted) and event.outcome == "ok":
            run = "" if event.run_uses_left is None else f", {event.run_uses_left} left in run"
            return (
                f"[{stamp}] {event.node}: consulted {event.model}, {event.uses_left} uses left{run}"
            )
        if isinstance(event, AdvisorWarning):
            return f"[{stamp}] warning: {event.message}"
        if isinstance(event, RunFinished):
            counts = ", ".join(f"{n} {s}" for s, n in event.counts.items())
            return f"[{stamp}] run {event.status} ({counts})"
        return ""
