"""Search tools with Claude Code's names and parameters: ``Glob`` (files by name pattern) and
``Grep`` (a regex over file contents, ripgrep's semantics without needing the binary)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from flowgraph.tools.confine import Place, ToolRefused, cut, resolve, shown

__all__ = ["Glob", "Grep"]

MAX_RESULTS = 1000
MAX_OUTPUT_CHARS = 30_000
SKIPPED_DIRS = {".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".ruff_cache"}


def Glob(pattern: str, ctx: Place, path: str | None = None) -> str:
    """Find files whose path matches a glob pattern such as `**/*.py` or `src/*.{ts,tsx}`.

    `path` is the directory to search (the workspace root by default). Newest files first.
    """
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolRefused(f"pattern {pattern!r} must be relative and without '..'; set `path`")
    base = _directory(ctx, path)
    root = ctx.workspace.resolve()
    found = {
        p
        for one in _braces(pattern)
        for p in base.glob(one)
        if p.is_file() and _inside(p, root) and not SKIPPED_DIRS & set(p.relative_to(base).parts)
    }
    ordered = sorted(found, key=lambda p: (-p.stat().st_mtime, p.as_posix()))
    lines = [shown(ctx, p) for p in ordered[:MAX_RESULTS]]
    if len(ordered) > MAX_RESULTS:
        lines.append(f"... [{len(ordered) - MAX_RESULTS} more files; narrow the pattern]")
    return "\n".join(lines) or "No files found"


def Grep(
    pattern: str,
    ctx: Place,
    path: str | None = None,
    glob: str | None = None,
    output_mode: Literal["content", "files_with_matches", "count"] = "files_with_matches",
    case_insensitive: bool = Field(False, alias="-i"),
    line_numbers: bool = Field(True, alias="-n"),
    after: int = Field(0, alias="-A", ge=0),
    before: int = Field(0, alias="-B", ge=0),
    context: int = Field(0, alias="-C", ge=0),
    head_limit: int | None = None,
    multiline: bool = False,
) -> str:
    """Search file contents for a regular expression (Python `re` syntax, as ripgrep's).

    `output_mode`: `files_with_matches` (default) lists files, `content` shows matching lines
    (with `-n` line numbers and `-A`/`-B`/`-C` context lines), `count` counts matches per file.
    `glob` filters files (`*.py`, `**/*.{ts,tsx}`); `path` is a file or directory to search.
    """
    flags = (re.IGNORECASE if case_insensitive else 0) | (re.S | re.M if multiline else 0)
    try:
        regex = re.compile(pattern, flags)
    except re.error as exc:
        raise ToolRefused(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    out: list[str] = []
    for file in _files(ctx, path, glob):
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: ripgrep skips these too
        name = shown(ctx, file)
        if output_mode == "content":
            out.extend(_content(name, text, regex, before or context, after or context,
                                line_numbers, multiline))  # fmt: skip
        elif output_mode == "count":
            hits = len(regex.findall(text))
            if hits:
                out.append(f"{name}:{hits}")
        elif regex.search(text):
            out.append(name)
        if head_limit and len(out) >= head_limit:
            out = out[:head_limit]
            break
    return cut("\n".join(out), MAX_OUTPUT_CHARS) if out else "No matches found"


def _content(
    name: str, text: str, regex: re.Pattern[str], before: int, after: int, numbers: bool,
    multiline: bool,
) -> list[str]:  # fmt: skip
    lines = text.splitlines()
    if multiline:
        hit_lines = {text.count("\n", 0, m.start()) for m in regex.finditer(text)}
    else:
        hit_lines = {i for i, line in enumerate(lines) if regex.search(line)}
    shown_lines: set[int] = set()
    for i in hit_lines:
        shown_lines.update(range(max(i - before, 0), min(i + after + 1, len(lines))))
    out: list[str] = []
    for i in sorted(shown_lines):
        mark = ":" if i in hit_lines else "-"
        out.append(f"{name}{mark}{i + 1}{mark}{lines[i]}" if numbers else f"{name}{mark}{lines[i]}")
    return out


def _directory(ctx: Place, path: str | None) -> Path:
    base = resolve(ctx, path) if path else ctx.workspace.resolve()
    if not base.is_dir():
        raise ToolRefused(f"no directory {path!r} in the workspace")
    return base


def _files(ctx: Place, path: str | None, glob: str | None) -> Iterator[Path]:
    root = ctx.workspace.resolve()
    start = resolve(ctx, path) if path else root
    if start.is_file():
        yield start
        return
    if not start.is_dir():
        raise ToolRefused(f"no file or directory {path!r} in the workspace")
    patterns = _braces(glob) if glob else []
    for file in sorted(start.rglob("*")):
        relative = file.relative_to(start)
        if SKIPPED_DIRS & set(relative.parts) or not file.is_file() or not _inside(file, root):
            continue
        if patterns and not any(_matches(relative, p) for p in patterns):
            continue
        yield file


def _matches(relative: Path, pattern: str) -> bool:
    """ripgrep's glob rule: a pattern without '/' matches the file name, else the path."""
    if "/" not in pattern:
        return fnmatch.fnmatch(relative.name, pattern)
    return relative.full_match(pattern) if hasattr(relative, "full_match") else (
        fnmatch.fnmatch(relative.as_posix(), pattern.replace("**/", "*"))
        or fnmatch.fnmatch(relative.as_posix(), pattern)
    )  # fmt: skip


def _inside(path: Path, root: Path) -> bool:
    """A symlink that resolves outside the workspace is not followed."""
    return path.resolve().is_relative_to(root)


def _braces(pattern: str) -> list[str]:
    """``*.{ts,tsx}`` -> ``*.ts``, ``*.tsx`` (one level of braces, as most globs need)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [x for alt in match.group(1).split(",") for x in _braces(head + alt + tail)]
