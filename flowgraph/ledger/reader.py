"""Reading a run's ledger back: the snapshot, then the journal lines written after it.

The reader refuses what it cannot trust, with one ``LedgerError`` line that names the file (and
the line) and says what to do; reading never changes a file on disk.

* ``ledger.json`` must be a regular file holding valid JSON of this schema (strict node records:
  an unknown key or a spend row without its fields is refused).
* Only a torn last journal line — bytes after the last newline, what a crash mid-append leaves —
  is ignored. Any other line that is not valid UTF-8 JSON of the journal schema stops the read.
* The journal and the inbox must be at least as long as the snapshot says it has read of them.
* An ``output_file`` must name a file under the run's ``outputs/``.
"""

from __future__ import annotations

import json
import os
import stat as stat_
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowgraph.errors import LedgerCorruptError, LedgerError, LedgerVersionError
from flowgraph.ledger.paths import inside
from flowgraph.ledger.schema import (
    SCHEMA_VERSION,
    SPEND_ROWS,
    InboxMessage,
    JournalEntry,
    LedgerDoc,
    NodeRecord,
)

__all__ = [
    "INBOX_FILE",
    "JOURNAL_FILE",
    "LEDGER_FILE",
    "LOCK_FILE",
    "inbox_messages",
    "is_leftover",
    "load",
    "output_file",
    "regular_file",
    "stamp",
    "steps_of",
]

LEDGER_FILE = "ledger.json"
JOURNAL_FILE = "events.jsonl"
INBOX_FILE = "inbox.jsonl"
LOCK_FILE = "ledger.lock"
FIX = "restore it from a backup or start a new run in another directory"


def stamp(path: Path) -> tuple[tuple[int, int], ...]:
    """Sizes and change times of the ledger's files, to tell whether they changed."""
    stamps = []
    for name in (LEDGER_FILE, JOURNAL_FILE):
        try:
            st = (path / name).stat()
        except (FileNotFoundError, NotADirectoryError):
            st = None
        stamps.append((st.st_size, st.st_mtime_ns) if st else (-1, -1))
    return tuple(stamps)


def regular_file(path: Path) -> os.stat_result | None:
    """``path``'s stat if it is a regular file, None if it is absent; refuse anything else (a
    directory, a FIFO that would block a reader forever, a socket...)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"cannot read {path} ({exc.strerror}); fix its permissions") from None
    if not stat_.S_ISREG(st.st_mode):
        what = "a directory" if stat_.S_ISDIR(st.st_mode) else "not a regular file"
        raise LedgerCorruptError(f"{path} is {what}; remove it, or {FIX}")
    return st


def is_leftover(path: Path) -> bool:
    """Whether ``path`` holds only what a kill while the run was being created can leave: the
    lock, an empty journal, temporary snapshot files — and no ``ledger.json``."""
    try:
        entries = list(path.iterdir())
    except OSError:
        return False
    if not entries or (path / LEDGER_FILE).exists():
        return False
    for entry in entries:
        name = entry.name
        if not entry.is_file() or entry.is_symlink():
            return False
        temp = name.startswith(f"{LEDGER_FILE}.") and name.endswith(".tmp")
        empty_journal = name == JOURNAL_FILE and entry.stat().st_size == 0
        if not (name == LOCK_FILE or temp or empty_journal):
            return False
    return True


def load(path: Path, *, conversations: bool = False) -> tuple[LedgerDoc, int]:
    """Parse the snapshot and replay the journal lines written after it. With
    ``conversations``, also give each unfinished attempt its steps from the journal (what the
    process that takes a run over carries on from); without, records hold none."""
    if not path.is_dir():
        raise LedgerError(
            f"{path} is not a run directory; pass the directory that holds {LEDGER_FILE}"
        )
    file = path / LEDGER_FILE
    if regular_file(file) is None:
        if is_leftover(path):
            raise LedgerCorruptError(
                f"{path} holds no {LEDGER_FILE}: its run was killed while it was being "
                f"created; start it again with `flowgraph run FILE --run-dir {path}`"
            )
        hint = (
            " (events.jsonl is there: the run never wrote its first snapshot)"
            if (path / JOURNAL_FILE).exists()
            else ""
        )
        raise LedgerCorruptError(f"{path} holds no {LEDGER_FILE}{hint}; start a new run instead")
    doc = _parse(file)
    offset = doc.journal.offset
    journal = path / JOURNAL_FILE
    size = _size(journal)
    if offset > size:
        have = f"is shorter ({size} bytes)" if size else "is missing"
        raise LedgerCorruptError(
            f"{journal} {have} than {LEDGER_FILE} says it was ({offset} bytes); restore both "
            "from a backup or start a new run in another directory"
        )
    starts = _conversation_starts(doc, file, offset)
    if size > offset:
        offset = _replay(doc, journal, offset, size)
    if conversations:
        _conversations(doc, journal, starts)
    else:  # a reader: the replay's steps alone would be half a conversation
        for record in doc.nodes.values():
            if record.conversation:
                record.conversation = []
    _check_inbox(path, doc)
    return doc, offset


def output_file(run_dir: Path, name: str, record: NodeRecord) -> Path:
    """Where ``record``'s large output is kept: a file under ``run_dir/outputs``, or refused."""
    target = inside(run_dir, record.output_file, "outputs")
    if target is None:
        raise LedgerCorruptError(
            f"{run_dir / LEDGER_FILE}: node {name!r} has output_file {record.output_file!r}, "
            f"which is not a file under {run_dir / 'outputs'}; {FIX}"
        )
    if regular_file(target) is None:
        raise LedgerCorruptError(
            f"node {name!r}'s output {target} is missing; restore it from a backup, or "
            "start a new run in another directory"
        )
    return target


def _size(file: Path) -> int:
    st = regular_file(file)
    return st.st_size if st else 0


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read {file} ({exc.strerror}); fix its permissions") from None


def _read_range(file: Path, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` of ``file``."""
    try:
        with file.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    except OSError as exc:
        raise LedgerError(f"cannot read {file} ({exc.strerror}); fix its permissions") from None


def _parse(file: Path) -> LedgerDoc:
    raw = _read(file)
    if not raw.strip():
        raise LedgerCorruptError(f"{file} is empty; {FIX}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8 or nesting
        why = "nested too deeply" if isinstance(exc, RecursionError) else _short(exc)
        raise LedgerCorruptError(f"{file} is not valid JSON ({why}); {FIX}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise LedgerCorruptError(f"{file} is not a flowgraph ledger (no schema_version); {FIX}")
    version = data["schema_version"]
    if not isinstance(version, int):
        raise LedgerCorruptError(f"{file} has a non-integer schema_version {version!r}; {FIX}")
    if version > SCHEMA_VERSION:
        raise LedgerVersionError(
            f"{file} was written by ledger schema {version}, this flowgraph reads up to "
            f"{SCHEMA_VERSION}; upgrade flowgraph (pip install -U flowgraph-llm) to resume it"
        )
    where = ""
    try:
        doc = LedgerDoc.model_validate(data)
        for name, record in doc.nodes.items():
            where = f"nodes.{name}.spend."
            SPEND_ROWS.validate_python(record.spend)
            if (
                record.output_file is not None
                and inside(file.parent, record.output_file, "outputs") is None
            ):
                raise LedgerCorruptError(
                    f"{file}: node {name!r} has output_file {record.output_file!r}, which is "
                    f"not a file under outputs/; {FIX}"
                )
    except ValidationError as exc:
        raise LedgerCorruptError(
            f"{file} is not a valid ledger: {where}{_first(exc)}; {FIX}"
        ) from None
    return doc


def _replay(doc: LedgerDoc, journal: Path, offset: int, size: int) -> int:
    """Apply journal lines from ``offset``; only a torn last line (no newline) is left out."""
    lines = _read_range(journal, offset, size).split(b"\n")
    for line in lines[:-1]:  # the last piece is torn (or empty)
        problem = _apply(doc, line, offset)
        if problem is not None:
            raise _bad_line(journal, _line_number(journal, offset), problem)
        offset += len(line) + 1
    return offset


def steps_of(run_dir: Path, name: str) -> list[dict[str, Any]]:
    """Every conversation step the journal holds for record ``name``, all its attempts, in the
    order they happened: its transcript (the snapshot never holds steps; the journal, never cut
    short, keeps them all). Refused like a read: any bad line but a torn last one."""
    journal = run_dir / JOURNAL_FILE
    if regular_file(journal) is None:
        return []
    steps = []
    lines = _read(journal).split(b"\n")
    for number, line in enumerate(lines[:-1], 1):  # the last piece is torn (or empty)
        entry = _entry(line)
        if isinstance(entry, str):
            raise _bad_line(journal, number, entry)
        if entry.n == name and entry.t is not None:
            steps.append(entry.t)
    return steps


def _conversation_starts(doc: LedgerDoc, file: Path, snapshot_at: int) -> dict[str, int]:
    """Where the snapshot says each attempt in progress began in the journal: before the
    snapshot's own offset, or it is refused."""
    starts = {n: r.conversation_at for n, r in doc.nodes.items() if r.conversation_at is not None}
    for name, start in starts.items():
        if not 0 <= start < snapshot_at:
            raise LedgerCorruptError(
                f"{file} says the conversation of node {name!r} starts at byte {start} of "
                f"{JOURNAL_FILE}, outside the {snapshot_at} bytes it covers; {FIX}"
            )
    return starts


def _conversations(doc: LedgerDoc, journal: Path, starts: dict[str, int]) -> None:
    """Give each record whose attempt in progress began before the snapshot (which keeps only
    where, ``starts``) the steps the journal holds for it from there to the snapshot; the
    replay after it added the rest (unless that attempt ended, or another began, in it). One
    read, from the first start on; only those records' steps are parsed."""
    starts = {n: at for n, at in starts.items() if doc.nodes[n].conversation_at == at}
    if not starts:
        return
    snapshot_at = doc.journal.offset
    first = min(starts.values())
    found = _steps_from(journal, _read_range(journal, first, snapshot_at), first, starts)
    for name, start in starts.items():
        head = found.get(name)
        if not head or head[0].get("k") != "task":
            raise LedgerCorruptError(
                f"{journal.parent / LEDGER_FILE} says the conversation of node {name!r} starts "
                f"at byte {start} of {journal}, but none of its steps starts there; {FIX}"
            )
        record = doc.nodes[name]
        record.conversation = head + record.conversation


def _steps_from(
    journal: Path, region: bytes, at: int, starts: dict[str, int]
) -> dict[str, list[dict[str, Any]]]:
    """The steps of each record in ``starts`` from its start on, in ``region`` (the journal's
    bytes from ``at``): the lines found by the bytes that begin a step line of that record."""
    prefixes: dict[int, dict[bytes, str]] = {}  # by length: '{"n": "<name>", "t": ' -> name
    for name in starts:
        prefix = json.dumps({"n": name, "t": 0})[:-2].encode()
        prefixes.setdefault(len(prefix), {})[prefix] = name
    found: dict[str, list[dict[str, Any]]] = {}
    for line in region.split(b"\n")[:-1]:
        owner = next((n for k, by in prefixes.items() if (n := by.get(line[:k]))), None)
        if owner is not None and at >= starts[owner]:
            entry = _entry(line)
            if isinstance(entry, str) or entry.t is None:
                raise _bad_line(journal, _line_number(journal, at), str(entry))
            if at == starts[owner]:
                found[owner] = []
            if owner in found:
                found[owner].append(entry.t)
        at += len(line) + 1
    return found


def _bad_line(journal: Path, number: int, why: str) -> LedgerCorruptError:
    return LedgerCorruptError(
        f"{journal} line {number} is not a ledger update ({why}); nothing was changed: {FIX}"
    )


def _entry(line: bytes) -> JournalEntry | str:
    """One journal line, checked; or why it is not one flowgraph wrote."""
    try:
        data = json.loads(line)
    except RecursionError:
        return "nested too deeply"
    except ValueError as exc:  # not UTF-8, not JSON, a NUL byte
        return _short(exc)
    if not isinstance(data, dict):
        return "not a JSON object"
    try:
        entry = JournalEntry.model_validate(data)
    except ValidationError as exc:
        return _first(exc)
    return entry.problem() or entry


def _apply(doc: LedgerDoc, line: bytes, at: int) -> str | None:
    """Apply one journal line (it starts at byte ``at``); why not, if it is not one flowgraph
    wrote."""
    entry = _entry(line)
    if isinstance(entry, str):
        return entry
    changes = entry.changes() if entry.t is None else {}
    if entry.n is None:
        for key, value in changes.items():
            setattr(doc, key, value)
        return None
    record = doc.nodes.get(entry.n)
    if record is None:
        record = doc.nodes[entry.n] = NodeRecord()
    if entry.t is not None:
        if entry.t["k"] == "task":  # a new attempt starts here
            record.conversation, record.conversation_at = [], at
        record.conversation.append(entry.t)
        return None
    for key, value in changes.items():
        setattr(record, key, value)
    if entry.l is not None:
        record.latency.append(entry.l)
    return None


def _check_inbox(path: Path, doc: LedgerDoc) -> None:
    inbox = path / INBOX_FILE
    size = _size(inbox)
    if doc.inbox_offset > size:
        have = f"is {size} bytes long" if size else "is missing"
        raise LedgerCorruptError(
            f"{path / LEDGER_FILE} says {doc.inbox_offset} bytes of {inbox} were read, but it "
            f"{have}; {FIX}"
        )


def inbox_messages(
    path: Path, offset: int, nodes: Collection[str]
) -> tuple[list[InboxMessage], int]:
    """The whole inbox lines after ``offset`` and the offset after them; a torn last line
    waits for its end. A line that is not a message for one of ``nodes`` is refused with its
    line number, so a message is never dropped (or applied to a record that does not exist)."""
    inbox = path / INBOX_FILE
    size = _size(inbox)
    if size <= offset:
        return [], offset
    messages = []
    lines = _read_range(inbox, offset, size).split(b"\n")
    for line in lines[:-1]:
        problem, message = _message(line, nodes)
        if message is None:
            number = _line_number(inbox, offset)
            raise LedgerCorruptError(
                f"{inbox} line {number} is not a message for this run ({problem}); remove "
                "that line (approve, reject or steer again with `flowgraph approve/reject/"
                "steer`) and try again"
            )
        messages.append(message)
        offset += len(line) + 1
    return messages, offset


def _message(line: bytes, nodes: Collection[str]) -> tuple[str, InboxMessage | None]:
    try:
        message = InboxMessage.model_validate(json.loads(line))
    except RecursionError:
        return "nested too deeply", None
    except ValidationError as exc:
        return _first(exc), None
    except ValueError as exc:
        return _short(exc), None
    if message.node not in nodes:
        return f"the run has no node {message.node[:80]!r}", None
    return "", message


def _line_number(journal: Path, offset: int) -> int:
    """The 1-based number of the line that starts at byte ``offset`` (counted only on error)."""
    with journal.open("rb") as fh:
        return fh.read(offset).count(b"\n") + 1


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return f"{where}: {first['msg'].lower()}"


def _short(exc: BaseException) -> str:
    return str(exc).split("\n")[0][:120]
