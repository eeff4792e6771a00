"""File tools the demo's roles call: read, write and list files inside the run's workspace.

Every path is relative to ``ctx.workspace``; an absolute path or one that climbs out with ``..``
is refused with an error the model reads (a tool that raises becomes an error result, so a
confused model can correct itself instead of crashing the run).
"""

from __future__ import annotations

from pathlib import Path

from flowgraph.declare.context import Context

__all__ = ["WorkspaceError", "list_files", "read_file", "resolve", "write_file"]

# A model that reads a huge file pays for every token of it; cut it off and say so.
MAX_READ_CHARS = 20_000


class WorkspaceError(ValueError):
    """A tool was asked for a path outside the workspace, or one that is not there."""


def resolve(ctx: Context, path: str) -> Path:
    """The absolute location of ``path`` inside ``ctx.workspace``; refuse anything outside it.

    Raises:
        WorkspaceError: ``path`` is empty, absolute, contains ``..``, or (through a symlink)
            leads outside the workspace.
    """
    relative = Path(path)
    if not path.strip() or relative.is_absolute() or ".." in relative.parts:
        raise WorkspaceError(
            f"path {path!r} is not allowed: use a path relative to the workspace without '..', "
            "e.g. 'todo/store.py'"
        )
    root = ctx.workspace.resolve()
    target = (root / relative).resolve()
    # A symlink planted inside the workspace must not become a way out of it.
    if not target.is_relative_to(root):
        raise WorkspaceError(f"path {path!r} leads outside the workspace; use a path inside it")
    return target


async def read_file(path: str, ctx: Context) -> str:
    """Read a text file in the workspace (path relative to the workspace root)."""
    target = resolve(ctx, path)
    if not target.is_file():
        raise WorkspaceError(f"no file {path!r} in the workspace; list_files shows what exists")
    body = target.read_text(encoding="utf-8", errors="replace")
    if len(body) > MAX_READ_CHARS:
        return body[:MAX_READ_CHARS] + f"\n... [cut: the file has {len(body)} characters]"
    return body


async def write_file(path: str, content: str, ctx: Context) -> str:
    """Create or replace a text file in the workspace (path relative to the workspace root)."""
    target = resolve(ctx, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return f"wrote {path} ({len(content.splitlines())} lines)"


async def list_files(ctx: Context, directory: str = ".") -> str:
    """List the files under a directory of the workspace, one relative path per line."""
    root = ctx.workspace.resolve()
    base = root if directory in ("", ".") else resolve(ctx, directory)
    if not base.is_dir():
        raise WorkspaceError(f"no directory {directory!r} in the workspace")
    files = sorted(
        p.relative_to(root).as_posix()
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    return "\n".join(files) or "(no files)"
