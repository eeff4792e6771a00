"""Permission profiles: the built-in tools a role may use, by name, as one value for
``Role(tools=...)``: ``READ_ONLY`` (Read, Grep, Glob) and ``CODER`` (all six)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowgraph.tools.files import Edit, Read, Write
from flowgraph.tools.search import Glob, Grep
from flowgraph.tools.shell import Bash

__all__ = ["BUILTIN", "CODER", "READ_ONLY", "WRITERS"]

BUILTIN: dict[str, Callable[..., Any]] = {
    "Read": Read, "Grep": Grep, "Glob": Glob, "Write": Write, "Edit": Edit, "Bash": Bash,
}  # fmt: skip
READ_ONLY: tuple[Callable[..., Any], ...] = (Read, Grep, Glob)
CODER: tuple[Callable[..., Any], ...] = (Read, Grep, Glob, Write, Edit, Bash)
# Tools that can change the workspace: a role with one of them works in its own copy.
WRITERS = frozenset({"Write", "Edit", "Bash"})
