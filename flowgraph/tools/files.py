"""File tools with Claude Code's names and parameters: ``Read``, ``Write`` and ``Edit``."""

from __future__ import annotations

from flowgraph.tools.confine import Place, ToolRefused, cut, resolve, shown

__all__ = ["Edit", "Read", "Write"]

DEFAULT_LINES = 2000
MAX_LINE_CHARS = 2000
MAX_READ_CHARS = 100_000


def Read(file_path: str, ctx: Place, offset: int | None = None, limit: int | None = None) -> str:
    """Read a text file in the workspace, with line numbers (as `cat -n`).

    `offset` is the first line to read (1-based) and `limit` how many lines; by default the
    first 2000 lines. Long lines and large files are truncated with a note.
    """
    target = resolve(ctx, file_path)
    if not target.is_file():
        raise ToolRefused(f"no file {file_path!r} in the workspace; Glob shows what exists")
    lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    start = max(offset or 1, 1)
    count = limit if limit is not None and limit > 0 else DEFAULT_LINES
    chosen = lines[start - 1 : start - 1 + count]
    body = "\n".join(
        f"{number:6}\t{cut(line, MAX_LINE_CHARS, 'line')}"
        for number, line in enumerate(chosen, start)
    )
    if not lines:
        return f"({shown(ctx, target)} is empty)"
    left = len(lines) - (start - 1 + len(chosen))
    if left > 0:
        body += f"\n... [{left} more lines; Read with offset={start + len(chosen)} for more]"
    return cut(body, MAX_READ_CHARS, "file")


def Write(file_path: str, content: str, ctx: Place) -> str:
    """Create or overwrite a text file in the workspace with `content`."""
    target = resolve(ctx, file_path)
    if target.is_dir():
        raise ToolRefused(f"{file_path!r} is a directory; give a file path")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    return f"wrote {shown(ctx, target)} ({len(content.splitlines())} lines)"


def Edit(
    file_path: str, old_string: str, new_string: str, ctx: Place, replace_all: bool = False
) -> str:
    """Replace the exact text `old_string` with `new_string` in a workspace file.

    `old_string` must occur exactly once (give more surrounding text to make it unique), or
    set `replace_all` to replace every occurrence.
    """
    target = resolve(ctx, file_path)
    if not target.is_file():
        raise ToolRefused(f"no file {file_path!r} in the workspace; Write creates a new file")
    if old_string == new_string:
        raise ToolRefused("old_string and new_string are the same; there is nothing to change")
    text = target.read_text(encoding="utf-8")
    found = text.count(old_string) if old_string else 0
    if found == 0:
        raise ToolRefused(f"old_string was not found in {file_path}; Read the file and copy "
                          "the text exactly, whitespace included")  # fmt: skip
    if found > 1 and not replace_all:
        raise ToolRefused(
            f"old_string occurs {found} times in {file_path}; include more surrounding text "
            "so it is unique, or set replace_all"
        )
    target.write_text(text.replace(old_string, new_string), encoding="utf-8")
    return f"edited {shown(ctx, target)}: {found if replace_all else 1} replacement(s)"
