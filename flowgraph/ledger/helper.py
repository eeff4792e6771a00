"""The ledger's helper thread: the disk work the event loop hands off so that nodes never wait
for the disk — journal fsyncs and snapshot writes. One thread, so the work happens in the order
it was handed over: a snapshot submitted after an fsync lands after it.

The store decides what to write and when; this only does it and reports how it went.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

__all__ = ["Helper"]


class Helper:
    """One helper thread (started on first use) and what it is doing."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._sync: Future[None] | None = None  # the journal fsync in progress
        self._writing: Future[None] | None = None  # the snapshot being written

    def fsync(self, fd: int) -> bool:
        """Start an fsync of ``fd``, unless one is still running (False: try again later; a
        later one covers what came since)."""
        if self._sync is not None and not self._sync.done():
            return False
        self._sync = self._thread().submit(os.fsync, fd)
        return True

    @property
    def writing(self) -> bool:
        """Whether a snapshot write was handed over and not yet looked at."""
        return self._writing is not None

    def write(self, store: Callable[[], None]) -> bool:
        """Run ``store`` (a snapshot write) unless one is still running (False)."""
        if self._writing is not None and not self._writing.done():
            return False
        self._writing = self._thread().submit(store)
        return True

    def failed_write(self) -> BaseException | None:
        """The error of a snapshot write that has finished (None: it went well, or it is
        still running); a finished write is forgotten once looked at."""
        writing = self._writing
        if writing is None or not writing.done():
            return None
        self._writing = None
        return writing.exception()

    def wait_sync(self) -> None:
        """Wait for the fsync in progress; its ``OSError`` is raised here."""
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.result()

    def wait(self) -> None:
        """Wait for the fsync and the snapshot write in progress (both, even when the first
        failed); the first ``OSError`` is raised here."""
        pending = [f for f in (self._sync, self._writing) if f is not None]
        self._sync = self._writing = None
        wait(pending)
        for future in pending:
            future.result()

    def close(self) -> None:
        """Finish what was handed over, then stop the thread."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="flowgraph-ledger")
        return self._pool
