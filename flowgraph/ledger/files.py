"""Writing the run directory's files so that a failure never destroys what was there: every
byte written or an ``OSError``, whole-file replacement through a temp file, and the words for
why a write failed."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write", "reason", "write_all"]


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written: a short write (a disk filling up, a file-size
    limit) is continued, and the next attempt raises the ``OSError`` that says why."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def reason(exc: OSError) -> str:
    names = {errno.ENOSPC: "the disk is full", errno.EFBIG: "a file-size limit was reached",
             errno.EDQUOT: "the disk quota is used up", errno.EIO: "an I/O error"}  # fmt: skip
    return f"{names.get(exc.errno or 0, exc.strerror or type(exc).__name__)} ({exc.strerror})"


def atomic_write(target: Path, data: bytes) -> None:
    """temp file in the same directory, every byte written, fsync, os.replace, fsync the
    directory. If any step fails the temp file is removed and ``target`` is untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
