"""Ledger: the run's durable record and hand-off document, kept in a run directory.

    runs/<run-id>/
        ledger.json      a pretty, versioned snapshot, replaced atomically (always readable)
        events.jsonl     an append-only journal of changes since the run began (O(1) per update)
        ledger.lock      held by the one process that drives the run
        outputs/         node outputs too large to keep inline

The state is ``ledger.json`` plus the journal lines after its ``journal.offset``. Updates are
applied in memory, queued, and written to the journal together at the next turn of the event loop
(group commit: completions that happen together are written with one ``write``). The journal is
fsynced at most every ``sync_interval`` seconds (on a helper thread) and on close; the snapshot
is rewritten when enough time has passed that its cost stays a small share of the run, and on
close. A killed process
therefore loses nothing it had written; a machine crash loses at most the last ``sync_interval``.
The journal is never cut short: it keeps every step of every role node's conversation, the only
transcript there is (``reader.steps_of`` reads it back) and what a resumed attempt carries on
from; the snapshot keeps only where each unfinished attempt's steps begin.

The ledger knows nothing of models or graphs: it stores node records by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from flowgraph.errors import (
    LedgerError,
    LedgerMismatchError,
    LedgerWriteError,
)
from flowgraph.ledger.files import atomic_write, reason, write_all
from flowgraph.ledger.guards import (
    acquire,
    check_outputs,
    check_writable,
    clear_leftover,
    truncate_torn_tail,
)
from flowgraph.ledger.helper import Helper
from flowgraph.ledger.paths import artifact_path
from flowgraph.ledger.reader import (
    JOURNAL_FILE,
    LEDGER_FILE,
    inbox_messages,
    is_leftover,
    load,
    output_file,
    stamp,
)
from flowgraph.ledger.schema import (
    SCHEMA_VERSION,
    Feature,
    GraphInfo,
    LedgerDoc,
    NodeRecord,
    now_iso,
)
from flowgraph.ledger.upgrade import anchor_conversations
from flowgraph.status import NodeStatus

__all__ = [
    "SCHEMA_VERSION",
    "Feature",
    "Ledger",
    "LedgerDoc",
    "NodeRecord",
    "now_iso",
]

OUTPUT_INLINE_LIMIT = 16_384  # bytes of JSON; larger outputs go to outputs/<file stem>.json


class Ledger:
    """The single writer of a run's ledger. Use ``Ledger.create``, ``Ledger.open`` or
    ``Ledger.memory``; read another process's run with ``Ledger.read``.
    """

    def __init__(
        self, doc: LedgerDoc, run_dir: Path | None, lock: FileLock | None, sync_interval: float
    ) -> None:
        self.doc = doc
        self.run_dir = run_dir
        self._lock = lock
        self._sync_interval = sync_interval
        self._pending: list[bytes] = []
        self._queued = 0  # the bytes in _pending: where the next line lands is _offset + this
        self._flush_scheduled = False
        self._fd: int | None = None
        self._offset = doc.journal.offset
        self._last_sync = time.monotonic()
        self._dirty_since_sync = False
        self._last_snapshot = time.monotonic()
        self._snapshot_cost = 0.0  # seconds the last snapshot took, serializing and writing
        self._store_cost = 0.0  # of which writing (on the helper thread, in the background)
        self._describe: Any = None
        self._changed = False
        self._helper = Helper()  # the disk work handed off the event loop
        self.failure: LedgerWriteError | None = None
        self._on_failure: Callable[[LedgerWriteError], None] | None = None
        if run_dir is not None:
            journal = run_dir / JOURNAL_FILE
            self._fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._offset = os.fstat(self._fd).st_size

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def memory(
        cls, *, run_id: str, graph: str, fingerprint: str, input: Mapping[str, Any]
    ) -> Ledger:
        """A ledger that lives only in memory (a run without a run directory)."""
        return cls(_new_doc(run_id, graph, fingerprint, input), None, None, 0.0)

    @classmethod
    def create(
        cls,
        run_dir: str | Path,
        *,
        run_id: str,
        graph: str,
        fingerprint: str,
        input: Mapping[str, Any],
        source: Mapping[str, Any] | None = None,
        sync_interval: float = 0.1,
    ) -> Ledger:
        """Start a new ledger in ``run_dir`` (created if missing; it must hold no other files,
        or only what a kill during an earlier creation left, which is cleared).

        ``source`` (where ``flowgraph resume`` finds the graph) is in the very first snapshot,
        so no crash window leaves a run that cannot say where its graph is.
        """
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise LedgerError(f"{path} is a file, not a run directory; pass a directory path")
        leftover = path.is_dir() and is_leftover(path)
        if path.is_dir() and not leftover and any(path.iterdir()):
            raise LedgerError(
                f"{path} is not empty and holds no flowgraph ledger; use a new or empty "
                "directory for the run"
            )
        path.mkdir(parents=True, exist_ok=True)
        check_writable(path)
        lock = acquire(path)
        try:
            if leftover:
                clear_leftover(path)
            doc = _new_doc(run_id, graph, fingerprint, input)
            doc.source = dict(source) if source is not None else None  # type: ignore[assignment]
            ledger = cls(doc, path, lock, sync_interval)
        except BaseException:
            lock.release()
            raise
        ledger._changed = True
        ledger.snapshot()
        return ledger

    @classmethod
    def open(
        cls, run_dir: str | Path, *, graph: str | None = None, sync_interval: float = 0.1
    ) -> Ledger:
        """Take over an existing run: lock it, load it, and tidy what a crash left behind.

        Args:
            run_dir: the run directory.
            graph: when given, refuse a ledger of another graph (before changing anything).
        """
        path = Path(run_dir)
        seen = stamp(path)
        doc, offset = load(path, conversations=True)  # refuse a bad one before any change
        if graph is not None and doc.graph.name != graph:
            raise LedgerMismatchError(
                f"{path} holds a run of graph {doc.graph.name!r}, not {graph!r}; resume it with "
                f"that graph, or pick a new --run-dir for {graph!r}"
            )
        check_outputs(path, doc)
        inbox_messages(path, doc.inbox_offset, doc.nodes)  # refuse a bad message now, not later
        check_writable(path)
        lock = acquire(path)
        try:
            if stamp(path) != seen:  # the last holder wrote while we were reading: read again
                doc, offset = load(path, conversations=True)
            # load() accepted every line before ``offset``: what follows is only a torn last
            # line (no newline), the one thing a crash mid-append leaves and that may go.
            truncate_torn_tail(path / JOURNAL_FILE, offset)
            for tmp in path.glob(f"{LEDGER_FILE}.*.tmp"):
                tmp.unlink(missing_ok=True)
        except BaseException:
            lock.release()
            raise
        ledger = cls(doc, path, lock, sync_interval)
        anchor_conversations(ledger.doc, ledger.note_turn)  # a schema 1 ledger's, if any
        return ledger

    @staticmethod
    def read(run_dir: str | Path) -> LedgerDoc:
        """A run's state, not taken over (another process may drive it); no conversation steps."""
        return load(Path(run_dir))[0]

    @staticmethod
    def exists(run_dir: str | Path) -> bool:
        """Whether ``run_dir`` holds a ledger (even a broken one); not a directory left by a kill
        while a run was being created (``create`` clears and reuses that)."""
        path = Path(run_dir)
        present = (path / LEDGER_FILE).exists() or (path / JOURNAL_FILE).exists()
        return present and not is_leftover(path)

    # -- updating ---------------------------------------------------------------------------

    def node(self, name: str) -> NodeRecord:
        """The record of node ``name`` (created as pending if the ledger has none)."""
        record = self.doc.nodes.get(name)
        if record is None:
            record = self.doc.nodes[name] = NodeRecord()
        return record

    def set_node(self, name: str, **fields: Any) -> None:
        """Change a node's record in memory only; the next ``snapshot`` makes it durable.

        For planning before a run starts: the snapshot that follows records every node at
        once, which is cheaper than a journal line per node.
        """
        record = self.doc.nodes.get(name)
        if record is None:  # a fresh run plans every node: build each record in one step
            self.doc.nodes[name] = NodeRecord(**fields)
        else:
            for key, value in fields.items():
                setattr(record, key, value)
        self._changed = True

    def update_node(self, name: str, **fields: Any) -> None:
        """Change fields of a node's record and journal the change."""
        record = self.doc.nodes.get(name) or self.node(name)
        status = fields.get("status")
        if status is not None and type(status) is not NodeStatus:
            fields["status"] = NodeStatus(status)  # a ValueError names a status that is none
        if "output" in fields:
            fields = self._place_output(name, fields)
        for key, value in fields.items():
            setattr(record, key, value)
        if self._fd is None:  # in memory: nothing to journal
            self._changed = True
            return
        self._journal({"n": name, "f": fields})

    def note_call(self, name: str, call: dict[str, Any], **fields: Any) -> None:
        """Record a paid call of ``name``: set ``fields`` (its new totals) and append ``call``
        to its ``latency``, journaled as one line that holds only this call (a delta: the
        list is never written again)."""
        record = self.doc.nodes.get(name) or self.node(name)
        for key, value in fields.items():
            setattr(record, key, value)
        record.latency.append(call)
        self._changed = True
        if self._fd is None or self.failure is not None:
            return
        self._queue(json.dumps({"n": name, "f": fields, "l": call}, default=str).encode() + b"\n")

    def note_turn(self, name: str, delta: dict[str, Any]) -> None:
        """Append one step of a role node's conversation to its record and journal it (a
        delta: the request is never written again). A run without a directory keeps none."""
        if self._fd is None or self.failure is not None:
            return
        record = self.node(name)
        if delta["k"] == "task":  # a new attempt: the snapshot points at its first step
            record.conversation = []
            record.conversation_at = self._offset + self._queued
        record.conversation.append(delta)
        self._journal({"n": name, "t": delta})

    def update_run(self, **fields: Any) -> None:
        """Change run-level fields (``status``...) and journal the change."""
        for key, value in fields.items():
            setattr(self.doc, key, value)
        self._journal({"r": fields})

    def _place_output(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Keep small outputs inline; write large ones to ``outputs/<node>.json``."""
        if self.run_dir is None:
            return fields
        blob = json.dumps(fields["output"], default=str)
        if len(blob) <= OUTPUT_INLINE_LIMIT:
            return {**fields, "output_file": None}
        rel = artifact_path("outputs", name)
        try:
            atomic_write(self.run_dir / rel, blob.encode())
        except OSError as exc:
            self._failed(exc, rel)  # the run stops; the output stays in memory only
            return fields
        return {**fields, "output": None, "output_file": rel}

    def output(self, name: str) -> Any:
        """A node's stored output, read back from its artifact file when it was large."""
        record = self.node(name)
        if record.output_file and self.run_dir is not None:
            return json.loads(output_file(self.run_dir, name, record).read_bytes())
        return record.output

    def _journal(self, entry: dict[str, Any]) -> None:
        self._changed = True
        if self._fd is None or self.failure is not None:  # after a failed write: the run stops
            return
        self._queue(json.dumps(entry, default=str).encode() + b"\n")

    def _queue(self, line: bytes) -> None:
        self._pending.append(line)
        self._queued += len(line)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the queued journal lines in one go; fsync and snapshot when they are due."""
        self._flush_scheduled = False
        if self._fd is None:
            return
        if self._helper.writing:
            self._check_background()
            if self.failure is not None:
                return
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._queued = 0
            try:
                write_all(self._fd, data)
            except OSError as exc:
                self._failed(exc, JOURNAL_FILE)
                return
            self._offset += len(data)
            self._dirty_since_sync = True
        now = time.monotonic()
        if self._dirty_since_sync and now - self._last_sync >= self._sync_interval:
            self._sync_in_background()
            self._last_sync = now
            self._dirty_since_sync = False
        # Rewriting the snapshot costs O(nodes); spacing it by 20x its own cost keeps it
        # under ~5% of the run however large the run grows.
        if now - self._last_snapshot >= max(0.5, 20 * self._snapshot_cost):
            self._snapshot_in_background()

    def _failed(self, exc: OSError, what: str) -> None:
        """A write did not complete: cut the journal back to its last whole line, keep the
        snapshot as it was, and tell the run to stop."""
        assert self._fd is not None and self.run_dir is not None
        with contextlib.suppress(OSError):  # a torn last line is dropped by the reader anyway
            os.ftruncate(self._fd, self._offset)
        self._pending.clear()
        self._queued = 0
        if self.failure is not None:
            return
        self.failure = LedgerWriteError(
            f"could not write {self.run_dir / what}: {reason(exc)}; the ledger on disk is "
            f"intact up to its last complete write — free space, then "
            f"`flowgraph resume {self.run_dir}`"
        )
        if self._on_failure is not None:
            self._on_failure(self.failure)

    def on_failure(self, stop: Callable[[LedgerWriteError], None]) -> None:
        """Call ``stop(error)`` once when a write fails (the run cannot go on recording)."""
        self._on_failure = stop

    def _sync_in_background(self) -> None:
        """fsync the journal on a helper thread: the event loop keeps serving nodes while the
        disk catches up. One fsync at a time; a later one covers what came since."""
        assert self._fd is not None
        if not self._helper.fsync(self._fd):
            self._dirty_since_sync = True

    def snapshot(self) -> None:
        """Write ``ledger.json`` atomically from the in-memory state, if it changed, and
        return when it is on disk.

        After a failed write nothing more is written: the snapshot on disk and the journal up
        to its last whole line are the state, and they agree.
        """
        blob = self._serialize()
        if blob is None:
            return
        try:
            self._helper.wait()  # a snapshot still being written lands first, never after
            self._store(blob)
        except OSError as exc:
            self._failed(exc, LEDGER_FILE)
            return
        self._snapshotted()

    def _snapshot_in_background(self) -> None:
        """The periodic snapshot: serialized here (the state of this instant), written and
        fsynced on the helper thread, so the event loop never waits for the disk. One at a
        time: while one is being written the next waits for a later flush."""
        if self._helper.writing:
            self._check_background()
            if self._helper.writing or self.failure is not None:
                return
        blob = self._serialize()
        if blob is not None:
            self._helper.write(lambda: self._store(blob))
            self._snapshotted()

    def _serialize(self) -> bytes | None:
        """The snapshot's bytes, with the journal offset they contain (None: nothing to do)."""
        if self.run_dir is None or self._fd is None or not self._changed:
            return None
        if self._pending:
            self._changed = False  # the flush below must not start a snapshot of its own
            self.flush()
        if self.failure is not None:
            return None
        self._changed = False
        started = time.monotonic()
        self.doc.journal.offset = self._offset
        self.doc.updated_at = now_iso()
        if self._describe is not None:
            self._describe(self.doc, self.run_dir)
        blob = self.doc.model_dump_json(indent=2).encode()
        # Its whole cost spaces the snapshots: serializing here, and what writing the last one
        # took on the helper thread (it competes for the same CPU).
        self._snapshot_cost = time.monotonic() - started + self._store_cost
        return blob

    def _store(self, blob: bytes) -> None:
        """On either thread: the journal up to the snapshot's offset is made durable before
        the snapshot that counts on it replaces the old one."""
        assert self._fd is not None and self.run_dir is not None
        started = time.monotonic()
        os.fsync(self._fd)
        atomic_write(self.run_dir / LEDGER_FILE, blob)
        self._store_cost = time.monotonic() - started

    def _snapshotted(self) -> None:
        self._dirty_since_sync = False
        self._last_snapshot = self._last_sync = time.monotonic()

    def _check_background(self) -> None:
        """Stop the run at the first flush after a snapshot failed on the helper thread."""
        error = self._helper.failed_write()
        if isinstance(error, OSError):
            self._failed(error, LEDGER_FILE)
        elif error is not None:
            raise error

    def on_snapshot(self, describe: Any) -> None:
        """Call ``describe(doc, run_dir)`` before each snapshot to refresh derived fields."""
        self._describe = describe

    def close(self) -> None:
        """Flush, snapshot, and release the run's lock."""
        if self._fd is not None:
            self.flush()  # queued lines and audit copies, even when the snapshot is not due
            try:
                self._helper.wait()  # a background snapshot that failed stops the run
            except OSError as exc:
                self._failed(exc, LEDGER_FILE)
            self.snapshot()
            try:
                self._helper.wait_sync()  # never close the descriptor under a running fsync
            except OSError as exc:
                self._failed(exc, JOURNAL_FILE)
            os.close(self._fd)
            self._fd = None
        self._helper.close()  # waits for the artifact writes still queued
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# -- helpers --------------------------------------------------------------------------------


def _new_doc(run_id: str, graph: str, fingerprint: str, input: Mapping[str, Any]) -> LedgerDoc:
    stamp = now_iso()
    return LedgerDoc(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        graph=GraphInfo(name=graph, fingerprint=fingerprint),
        input=dict(input),
        created_at=stamp,
        updated_at=stamp,
        nodes={},
    )
