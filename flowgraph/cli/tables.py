"""Tables that fit the terminal: one line per row, every word whole.

A cell never wraps (a model id folded in two reads as two models, and rows of several lines
push the header off the screen); instead, when the table is wider than the terminal, the
columns that matter least are dropped until it fits, and the caller says which ones went.
Long free text (errors, notes) belongs under the table, where it wraps at spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich import box
from rich.console import Console, ConsoleOptions
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "add_row", "fit_table", "notes", "styled"]


@dataclass
class Column:
    """One column: its header, its cells (rich markup allowed) and how much it matters.

    ``keep`` orders what a narrow terminal drops first (lowest first); a column whose cells are
    all empty is left out whatever its ``keep``, unless ``always``.
    """

    header: str
    keep: int
    justify: Literal["left", "right"] = "left"
    always: bool = False
    cells: list[str] = field(default_factory=list)


def add_row(columns: Sequence[Column], cells: Sequence[str]) -> None:
    """Add one row: a cell to each column, in order."""
    for column, cell in zip(columns, cells, strict=True):
        column.cells.append(cell)


def _table(columns: Sequence[Column], rows: int) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True
    )
    for column in columns:
        table.add_column(column.header, justify=column.justify, no_wrap=True,
                         overflow="ellipsis")  # fmt: skip
    for i in range(rows):
        table.add_row(*(column.cells[i] for column in columns))
    return table


def fit_table(
    columns: Sequence[Column], console: Console, options: ConsoleOptions | None = None
) -> tuple[Table, list[str]]:
    """The widest table of ``columns`` that fits the console (or ``options``) width, and the
    headers of the columns dropped to make it fit."""
    options = options or console.options
    width = options.max_width
    rows = max((len(c.cells) for c in columns), default=0)
    shown = [c for c in columns if c.always or any(c.cells)]
    dropped: list[str] = []
    table = _table(shown, rows)
    unbounded = options.update_width(1_000_000)  # measured at its natural width
    while console.measure(table, options=unbounded).maximum > width:
        droppable = [c for c in shown if not c.always]
        if not droppable:
            break  # even the essential columns are too wide: rich shortens their cells
        least = min(droppable, key=lambda c: c.keep)
        shown.remove(least)
        dropped.append(least.header)
        table = _table(shown, rows)
    return table, dropped


def notes(lines: Sequence[tuple[str, str]]) -> list[Text]:
    """``name: text`` lines, the name in bold; each wraps at spaces under the table."""
    return [Text.assemble((name, "bold"), ": ", text) for name, text in lines]


# The colour of each status word (a race contender's "check failed" is a failure to see).
_STYLE = {
    "passed": "green",
    "passed, won": "bold green",
    "passed, lost": "dim",
    "passed (reused)": "green",
    "failed": "red",
    "check failed": "red",
    "budget_exceeded": "red",
    "running": "yellow",
    "starting": "yellow",
    "waiting_approval": "cyan",
    "incomplete": "cyan",
    "skipped": "dim",
    "not_taken": "dim",
    "interrupted": "magenta",
}


def styled(status: str) -> str:
    """``status`` in rich markup, coloured by what it means."""
    return f"[{_STYLE.get(status, 'white')}]{status}[/]"
