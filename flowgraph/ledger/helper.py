"""The ledger's helper thread: the disk work the event loop hands off so that nodes never wait
for the disk — journal fsyncs and snapshot writes. One thread, so the work happens in the order
it was handed over: a snapshot submitted after an fsync lands after it. Live transcripts are
appended to files kept open here: created on the helper thread, then written from the event
loop.

The store decides what to write and when; this only does it and reports how it went.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from flowgraph.ledger.files import write_all

__all__ = ["Helper"]


class Helper:
    """One helper thread (started on first use) and what it is doing."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._sync: Future[None] | None = None  # the journal fsync in progress
        self._writing: Future[None] | None = None  # the snapshot being written
        self._appending: dict[Path, int] = {}  # audit files kept open for appending
        # Appends handed to the helper thread and not yet written, per file (either thread
        # changes it, under the lock); a file with any is written only by the helper thread.
        self._queued: dict[Path, int] = {}
        self._handing = threading.Lock()

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

    def append(self, batch: list[tuple[Path, bytes]]) -> None:
        """Append to audit files, each kept open until ``close``. To a file already open the
        calling thread (the event loop) writes itself: a copy into the page cache, cheaper
        than waking the helper thread. A new file is created on the helper thread — creating
        one costs up to half a millisecond on a young ext4 disk, once per role node — and so
        is every append to a file while the helper thread still has one for it: a file's lines
        keep their order."""
        grouped: dict[Path, list[bytes]] = {}
        for target, data in batch:
            grouped.setdefault(target, []).append(data)
        handed: list[tuple[Path, bytes]] = []
        for target, parts in grouped.items():
            data = b"".join(parts)
            fd = self._appending.get(target)
            with self._handing:
                queued = self._queued.get(target, 0)
                if fd is None or queued:
                    self._queued[target] = queued + 1
                    handed.append((target, data))
                    continue
            _append(fd, data)
        if handed:
            self._thread().submit(self._create_and_append, handed)

    def _create_and_append(self, batch: list[tuple[Path, bytes]]) -> None:
        """On the helper thread: open (creating) each file not yet open, append, and count
        the append done."""
        for target, data in batch:
            try:
                fd = self._appending.get(target)
                if fd is None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    self._appending[target] = fd
                _append(fd, data)
            except OSError:
                pass  # an audit copy: the journal holds the same steps
            finally:
                with self._handing:
                    left = self._queued.pop(target) - 1
                    if left:
                        self._queued[target] = left

    def close(self) -> None:
        """Finish what was handed over, then stop the thread and close the audit files."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for fd in self._appending.values():
            os.close(fd)
        self._appending.clear()

    def _thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="flowgraph-ledger")
        return self._pool


def _append(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):  # an audit copy: the journal holds the same steps
        write_all(fd, data)
