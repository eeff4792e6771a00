"""The CLI's view of a running graph: a live rich table on a terminal, plain lines elsewhere.

The live table keeps one line per node, fitted to the terminal (see ``tables``); what needs
words (a fallback, a retry, an error, why a node waits) goes under it, and a pattern's parts
(map items, review rounds, race contenders) are counted on their node's line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from flowgraph.cli.tables import Column, add_row, fit_table, notes, styled
from flowgraph.events import (
    AdvisorConsulted,
    AdvisorWarning,
    Event,
    FallbackTaken,
    ModelCalled,
    ModelSubstituted,
    ModelTurn,
    NodeFinished,
    NodeRetrying,
    NodeStarted,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCalled,
)

__all__ = ["Progress"]

# Signs that a node's first model call is under way (until one comes it is "starting": on a
# loaded machine the SDK alone can take seconds to import).
_ALIVE = (ModelCalled, ModelTurn, TextDelta, ToolCalled, AdvisorConsulted)
# In the plain lines a pattern's parts each get a line up to this many; past it, a 10,000-item
# map would print 20,000 lines, so only parts that did not pass get one, and the count of those
# that did is said at most once a second.
_PART_LINES = 20
_COUNT_EVERY_S = 1.0


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
    parts: dict[str, str] = field(default_factory=dict)  # a pattern's parts and their status
    counted: float = 0.0  # when the plain lines last counted its parts

    def elapsed(self) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or time.monotonic()) - self.started:.1f}s"

    def parts_text(self, name: str) -> str:
        """``3 of 7 parts passed; running: review[3], review[4]`` for node ``name``."""
        if not self.parts:
            return ""
        passed = sum(1 for s in self.parts.values() if s == "passed")
        # A review round "loop.review2" is "review2" on its loop's line; an item keeps "[3]".
        running = [n.removeprefix(name + ".") for n, s in self.parts.items() if s == "running"]
        failed = [n.removeprefix(name + ".") for n, s in self.parts.items() if s == "failed"]
        text = f"{passed} of {len(self.parts)} parts passed"
        for word, names in (("running", running), ("failed", failed)):
            if names:
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                text += f"; {word}: {', '.join(names[:3])}{more}"
        return text


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
        self.title = "flowgraph run"
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_mode:
            self._live = Live(self.view(), console=self.console, refresh_per_second=8,
                              get_renderable=self.view)  # fmt: skip
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        self._update(event)
        if not self.live_mode and self._worth_a_line(event):
            line = self._line(event)
            if line:
                print(line, file=self.stream, flush=True)

    def _worth_a_line(self, event: Event) -> bool:
        """Whether a plain line is due: always, but for the parts of a large pattern."""
        parent: str | None = getattr(event, "parent", None)
        row = self.rows.get(parent) if parent is not None else None
        if parent is None or row is None or len(row.parts) <= _PART_LINES:
            return True
        if isinstance(event, NodeFinished) and event.status != "passed":
            return True
        now = time.monotonic()
        if isinstance(event, NodeFinished) and now - row.counted >= _COUNT_EVERY_S:
            row.counted = now
            print(f"[{time.strftime('%H:%M:%S')}] {parent}: {row.parts_text(parent)}",
                  file=self.stream, flush=True)  # fmt: skip
        return False

    def view(self) -> _View:
        """What the live display shows now; it fits whatever width it is rendered at."""
        return _View(self)

    def _update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.title = f"flowgraph run {event.run_id}"
            for name in event.nodes:
                self.rows[name] = _Row(model=event.models.get(name, ""))
            return
        node = getattr(event, "node", "")
        parent = getattr(event, "parent", None)
        if parent is not None and parent in self.rows:
            self._part(self.rows[parent], node, event)
            return
        row = self.rows.get(node)
        if row is None:
            return
        if isinstance(event, _ALIVE) and row.status == "starting":
            row.status = "running"
        if isinstance(event, NodeStarted):
            row.status = "starting" if event.model else "running"
            row.started, row.ended, row.turns, row.tools, row.note = (
                time.monotonic(), None, 0, 0, ""
            )  # fmt: skip
        elif isinstance(event, ModelTurn):
            row.turns, row.model = event.turn, event.model
        elif isinstance(event, ToolCalled):
            row.tools += 1
        elif isinstance(event, AdvisorConsulted | AdvisorWarning):
            _advisor(row, event)
        elif isinstance(event, FallbackTaken | ModelSubstituted | NodeRetrying):
            row.note = _said(event)
        elif isinstance(event, NodeFinished):
            row.status = "passed (reused)" if event.reused else event.status
            row.ended = time.monotonic()
            row.note = event.error or ""  # a fallback or retry that led here is news no more

    def _part(self, row: _Row, name: str, event: Event) -> None:
        if row.status == "starting":
            row.status = "running"
        if isinstance(event, NodeStarted):
            row.parts[name] = "running"
        elif isinstance(event, NodeFinished):
            row.parts[name] = event.status

    def _line(self, event: Event) -> str:
        stamp = time.strftime("%H:%M:%S")
        said = self._said(event)
        return f"[{stamp}] {said}" if said else ""

    def _said(self, event: Event) -> str:
        """One event in words, for the plain lines (``""``: not worth a line)."""
        if isinstance(event, RunStarted):
            todo, total = len(event.to_run), len(event.nodes)
            return f"run {event.run_id}: {todo} of {total} nodes to run"
        if isinstance(event, NodeStarted):
            return f"{event.node}: started (attempt {event.attempt}) {event.model}".rstrip()
        if isinstance(event, FallbackTaken | ModelSubstituted | NodeRetrying):
            return f"{event.node}: {_said(event)}"
        if isinstance(event, NodeFinished):
            return self._finished(event)
        if isinstance(event, AdvisorConsulted):
            return _consulted(event)
        if isinstance(event, AdvisorWarning):
            return f"warning: {event.message}"
        if isinstance(event, RunFinished):
            counts = ", ".join(f"{n} {s}" for s, n in event.counts.items())
            return f"run {event.status} ({counts})"
        return ""

    def _finished(self, event: NodeFinished) -> str:
        if event.reused:
            return f"{event.node}: passed earlier, reused"
        row = self.rows.get(event.node, _Row())
        detail = f" after {row.turns} turns, {row.tools} tool calls" if row.turns else ""
        error = f": {event.error}" if event.error else ""
        return f"{event.node}: {event.status}{detail}{error}"


def _said(event: FallbackTaken | ModelSubstituted | NodeRetrying) -> str:
    if isinstance(event, FallbackTaken):
        return f"fallback {event.from_model} -> {event.to_model} ({event.reason})"
    if isinstance(event, ModelSubstituted):
        return f"asked {event.requested}, {event.served} answered"
    return f"retrying in {event.delay:g}s after: {event.error}"


def _consulted(event: AdvisorConsulted) -> str:
    if event.outcome != "ok":
        return f"{event.node}: advisor consult {event.outcome} ({event.model})"
    left = "" if event.uses_left is None else f", {event.uses_left} uses left"
    run = "" if event.run_uses_left is None else f", {event.run_uses_left} left in run"
    return f"{event.node}: consulted {event.model}{left}{run}"


class _View:
    """The live display: title, the table fitted to the width it is given, notes under it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = self.progress.rows
        columns = [Column("node", 9, always=True), Column("status", 9, always=True),
                   Column("model", 8), Column("turns", 5, "right"),
                   Column("tools", 4, "right"), Column("advisor", 3),
                   Column("elapsed", 6, "right")]  # fmt: skip
        for name, row in rows.items():
            cells = (name, styled(row.status), row.model, str(row.turns or ""),
                     str(row.tools or ""), row.advisor, row.elapsed())  # fmt: skip
            add_row(columns, cells)
        table, _ = fit_table(columns, console, options)
        yield Text(self.progress.title, style="bold")
        yield table
        yield from notes(list(_notes(rows)))
        # The terminal echoes ^C where the cursor rests, at the end of the last line drawn: on
        # a full line it would wrap, the view would no longer know its height, and draw itself
        # again below itself. An empty last line takes the echo instead.
        yield Text("")


# Past this many seconds "starting" gets a word of why (the first call of a process also loads
# the model client, which takes seconds on a loaded machine).
_SLOW_START = 2.0


def _notes(rows: dict[str, _Row]) -> Iterator[tuple[str, str]]:
    now = time.monotonic()
    for name, row in rows.items():
        slow = row.status == "starting" and now - (row.started or now) > _SLOW_START
        waiting = "waiting for its first model reply (a run's first call also loads the client)"
        for text in (row.parts_text(name), row.note, waiting if slow else ""):
            if text:
                yield name, text
