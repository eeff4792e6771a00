"""The demo's scripted model turns: what each role "says", as real tool calls and answers.

No model is called. Each node's list is replayed turn by turn (see ``ScriptedModel``); the code
the backend and frontend write is real, working Python that the ``run_tests`` step executes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowgraph.models.seam import ModelRequest
from flowgraph.testing import text, tool_call

__all__ = ["SCRIPT"]

STORE_PY = '''\
"""The todo list itself: items with a title, an optional due date, and whether they are done."""

from dataclasses import dataclass, field
from datetime import date


@dataclass
class Item:
    title: str
    done: bool = False
    due: date | None = None

    def is_overdue(self, today: date) -> bool:
        return not self.done and self.due is not None and self.due < today


@dataclass
class TodoList:
    items: list[Item] = field(default_factory=list)

    def add(self, title: str, due: date | None = None) -> Item:
        item = Item(title, due=due)
        self.items.append(item)
        return item

    def complete(self, title: str) -> None:
        for item in self.items:
            if item.title == title:
                item.done = True

    def pending(self) -> list[Item]:
        return [item for item in self.items if not item.done]

    def overdue(self, today: date) -> list[Item]:
        return [item for item in self.items if item.is_overdue(today)]

    def by_due_date(self) -> list[Item]:
        # Undated items sort after every dated one.
        return sorted(self.pending(), key=lambda i: (i.due is None, i.due or date.max))
'''

TEST_DUE_PY = """\
from datetime import date

from todo.store import TodoList

TODAY = date(2026, 5, 10)


def test_add_accepts_a_due_date() -> None:
    item = TodoList().add("pay rent", due=date(2026, 6, 1))
    assert item.due == date(2026, 6, 1)


def test_overdue_lists_only_late_pending_items() -> None:
    todos = TodoList()
    todos.add("late", due=date(2026, 5, 1))
    todos.add("late but done", due=date(2026, 5, 1))
    todos.add("later", due=date(2026, 5, 20))
    todos.add("someday")
    todos.complete("late but done")
    assert [i.title for i in todos.overdue(TODAY)] == ["late"]


def test_by_due_date_puts_undated_items_last() -> None:
    todos = TodoList()
    todos.add("someday")
    todos.add("second", due=date(2026, 5, 20))
    todos.add("first", due=date(2026, 5, 11))
    assert [i.title for i in todos.by_due_date()] == ["first", "second", "someday"]
"""

CLI_PY = '''\
"""Show a todo list in the terminal: one line per pending item, soonest due first."""

from datetime import date

from todo.store import TodoList


def render(todos: TodoList, today: date) -> str:
    lines = []
    for item in todos.by_due_date():
        due = f" (due {item.due.isoformat()})" if item.due else ""
        late = " OVERDUE" if item.is_overdue(today) else ""
        lines.append(f"[ ] {item.title}{due}{late}")
    return "\\n".join(lines) or "nothing to do"
'''

TEST_CLI_PY = """\
from datetime import date

from todo.cli import render
from todo.store import TodoList


def test_render_marks_overdue_items() -> None:
    todos = TodoList()
    todos.add("file taxes", due=date(2026, 4, 15))
    todos.add("water plants")
    assert render(todos, date(2026, 5, 10)).splitlines() == [
        "[ ] file taxes (due 2026-04-15) OVERDUE",
        "[ ] water plants",
    ]


def test_render_says_when_nothing_is_left() -> None:
    assert render(TodoList(), date(2026, 5, 10)) == "nothing to do"
"""

PLAN = {
    "summary": "Add an optional due date to todo items, a way to list overdue and due-soon "
    "items, and show due dates in a small CLI. Design in docs/design.md.",
    "backend": "In todo/store.py: Item.due (date | None), Item.is_overdue(today), "
    "TodoList.add(title, due=None), TodoList.overdue(today), TodoList.by_due_date(). "
    "Tests in tests/test_due.py.",
    "frontend": "New todo/cli.py with render(todos, today) -> str: pending items by due date, "
    "'(due YYYY-MM-DD)' and 'OVERDUE' marks, 'nothing to do' when empty. Tests in "
    "tests/test_cli.py.",
}

REVIEW = {
    "verdict": "approve",
    "notes": [
        "Item.due defaults to None, so existing callers and tests keep working.",
        "is_overdue ignores done items, which matches the design.",
        "by_due_date sorts undated items last without comparing None to a date.",
    ],
}


def _tester_report(request: ModelRequest) -> str:
    """The tester's last turn: a report built from the test counts it was given."""
    first = request.messages[0]["content"] if request.messages else ""
    if not isinstance(first, str):  # text blocks (e.g. carrying a cache breakpoint)
        first = "".join(b.get("text", "") for b in first if isinstance(b, dict))
    found = re.search(r"(\d+) passed, (\d+) failed", first)
    passed, failed = (found.group(1), found.group(2)) if found else ("?", "?")
    return (
        f"Test report: {passed} passed, {failed} failed. tests/test_due.py covers adding a due "
        "date, overdue items (done ones excluded) and ordering with undated items last; "
        "tests/test_cli.py covers the OVERDUE mark and the empty list. Gap: no test for an item "
        "due exactly today (it is not overdue by design)."
    )


Turn = Any  # a ModelResponse, a final-answer string, or a function of the request
SCRIPT: Mapping[str, Sequence[Turn] | Callable[[ModelRequest], Any]] = {
    "architect": [
        tool_call("Glob", pattern="**/*.py", say="Let me look at the project first."),
        tool_call("Read", file_path="todo/store.py"),
        json.dumps(PLAN),
    ],
    "backend": [
        tool_call("Read", file_path="todo/store.py"),
        tool_call("Write", file_path="todo/store.py", content=STORE_PY),
        tool_call("Write", file_path="tests/test_due.py", content=TEST_DUE_PY),
        text(
            "Added Item.due, Item.is_overdue, TodoList.overdue and TodoList.by_due_date, "
            "with three tests in tests/test_due.py."
        ),
    ],
    "frontend": [
        tool_call("Grep", pattern="def ", path="todo", output_mode="content"),
        tool_call("Write", file_path="todo/cli.py", content=CLI_PY),
        tool_call("Write", file_path="tests/test_cli.py", content=TEST_CLI_PY),
        "Added todo/cli.py with render(todos, today), and tests/test_cli.py.",
    ],
    "tester": [
        tool_call("Glob", pattern="tests/*.py"),
        tool_call("Read", file_path="tests/test_due.py"),
        _tester_report,
    ],
    "reviewer": [
        tool_call("Read", file_path="todo/store.py"),
        tool_call("Read", file_path="todo/cli.py"),
        json.dumps(REVIEW),
    ],
}
