"""Confinement: every path a built-in tool touches is resolved inside the node's workspace.

A path may be relative to the workspace or absolute inside it; one that climbs with ``..``,
is absolute elsewhere, or (through a symlink) resolves outside is refused with a
``ToolRefused`` the model reads as a tool error. Nothing outside the workspace is read or
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Place", "ToolRefused", "cut", "resolve", "shown"]


@runtime_checkable
class Place(Protocol):
    """What a built-in tool needs of the running node: its workspace (``Context`` has one)."""

    workspace: Path


class ToolRefused(ValueError):
    """A tool was asked to do something outside its workspace or its rules; the message says
    what to do instead."""


def resolve(place: Place, path: str) -> Path:
    """The absolute location of ``path`` inside the workspace, or ``ToolRefused``."""
    root = place.workspace.resolve()
    given = Path(path)
    if not path.strip():
        raise ToolRefused("the path is empty; give a path inside the workspace, e.g. 'src/app.py'")
    if ".." in given.parts:
        raise ToolRefused(
            f"path {path!r} is refused: '..' may lead outside the workspace; use a path "
            "relative to the workspace root"
        )
    target = given if given.is_absolute() else root / given
    resolved = target.resolve()
    if not resolved.is_relative_to(root):
        why = "is outside" if not target.is_relative_to(root) else "leads (via a symlink) outside"
        raise ToolRefused(
            f"path {path!r} {why} the workspace {root}; only files inside it can be used"
        )
    return resolved


def shown(place: Place, target: Path) -> str:
    """``target`` as the model should see it: relative to the workspace root."""
    return target.relative_to(place.workspace.resolve()).as_posix() or "."


def cut(text: str, limit: int, what: str = "output") -> str:
    """``text`` cut to ``limit`` characters, with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [{what} truncated: {len(text) - limit} more characters]"
