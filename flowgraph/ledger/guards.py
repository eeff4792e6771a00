"""Guards of opening a run directory: the checks made before anything is taken over or
written, the run lock, and tidying what a crash left behind."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from flowgraph.errors import LedgerError, LedgerLockedError
from flowgraph.ledger.reader import (
    INBOX_FILE,
    JOURNAL_FILE,
    LEDGER_FILE,
    LOCK_FILE,
    output_file,
    regular_file,
)
from flowgraph.ledger.schema import LedgerDoc

__all__ = ["acquire", "check_outputs", "check_writable", "clear_leftover", "truncate_torn_tail"]


def check_outputs(path: Path, doc: LedgerDoc) -> None:
    """Refuse a run whose passed nodes' output files are gone or outside ``outputs/``, before
    anything is taken over or written (their outputs feed the nodes that run next)."""
    for name, record in doc.nodes.items():
        if record.output_file is not None:
            output_file(path, name, record)


def check_writable(path: Path) -> None:
    """Refuse, before writing anything, a run directory this process cannot write to, and
    ledger files that are not regular files (a directory named ``ledger.lock``...)."""
    for name in (LOCK_FILE, JOURNAL_FILE, INBOX_FILE):
        regular_file(path / name)
    denied = [p for p in (path, path / LOCK_FILE, path / JOURNAL_FILE)
              if p.exists() and not os.access(p, os.W_OK)]  # fmt: skip
    if denied:
        raise LedgerError(
            f"{denied[0]} is read-only; make the run directory writable (chmod -R u+w "
            f"{path}) to use it, or copy it somewhere writable"
        )


def clear_leftover(path: Path) -> None:
    """Remove what a kill during an earlier creation left (see ``is_leftover``), under the lock."""
    (path / JOURNAL_FILE).unlink(missing_ok=True)
    for tmp in path.glob(f"{LEDGER_FILE}.*.tmp"):
        tmp.unlink(missing_ok=True)


def acquire(path: Path) -> FileLock:
    lock = FileLock(path / LOCK_FILE, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise LedgerLockedError(
            f"{path} is being driven by another flowgraph process; wait for it to finish "
            f"(see `flowgraph status {path}`) or stop it before resuming"
        ) from None
    return lock


def truncate_torn_tail(journal: Path, good: int) -> None:
    """Cut a torn last line (bytes after the last newline), and only that."""
    if journal.exists() and journal.stat().st_size > good:
        with journal.open("r+b") as fh:
            fh.seek(good)
            if b"\n" in fh.read():  # never cut a whole line: that is refused, not repaired
                raise LedgerError(f"{journal} changed while it was being opened; {_RETRY}")
            fh.truncate(good)


_RETRY = "wait for the other process to stop, then try again"
