"""File names for record names: a record's output file can never leave its folder.

Record names come from graph authors and from models (a checklist item is whatever text an
initializer returned: ``todo[../../../tmp/x]``, a 400-character sentence, ``CON``, a newline).
``file_stem`` maps any record name to one path component that is

* safe: no ``/``, no NUL, not ``.`` or ``..``, never hidden, nothing outside ``[A-Za-z0-9_.[]-]``;
* bounded: at most ``MAX_STEM`` characters, so ``<stem>.json`` plus a temp suffix stays far
  below the 255-byte limit of common filesystems;
* collision-free: a readable name (``plan``, ``team.plan``, ``fan[3]``) is kept as it is; any
  other becomes a slug plus ``-`` and a hash of the full name. A readable name never holds
  ``-``, so a hashed stem never equals a readable one, and readable names are lower-case, so
  two stems never differ by case only (macOS and Windows fold case).

The ledger keeps the real name; the stem is only where the bytes live.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

__all__ = ["MAX_STEM", "artifact_path", "file_stem", "inside"]

MAX_STEM = 120
_READABLE = re.compile(r"^[a-z0-9_][a-z0-9_.\[\]]{0,99}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\[\]]+")
_SLUG = 80  # characters of slug before the hash
_HASH = 16  # hex digits of sha256: 64 bits, collisions are not a practical concern


def file_stem(record: str) -> str:
    """One safe, bounded, collision-free path component for ``record`` (no extension)."""
    if _READABLE.match(record):
        return record
    slug = _UNSAFE.sub("_", record).lstrip("._")[:_SLUG].rstrip(".") or "record"
    digest = hashlib.sha256(record.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]
    return f"{slug}-{digest}"


def artifact_path(folder: str, record: str, suffix: str = ".json") -> str:
    """The run-relative path of ``record``'s file in ``folder``: ``outputs/fan[3].json``."""
    return f"{folder}/{file_stem(record)}{suffix}"


def inside(run_dir: Path, relative: object, folder: str) -> Path | None:
    """``run_dir/relative`` if ``relative`` is a plain relative path under ``folder`` that
    stays there once symlinks are resolved; None for anything else (absolute, ``..``, not a
    string, a link out of the run directory)."""
    if not isinstance(relative, str) or "\x00" in relative:
        return None
    parts = PurePosixPath(relative).parts
    if len(parts) < 2 or parts[0] != folder or ".." in parts or relative.startswith("/"):
        return None
    base = (run_dir / folder).resolve()
    target = (run_dir / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        return None
    return target
