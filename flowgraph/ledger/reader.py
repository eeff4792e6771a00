"""Reading a run's ledger back: the snapshot, then the journal lines written after it.

Every way a ``ledger.json`` can be unusable (empty, truncated, not JSON, another schema, missing
fields, a foreign journal line) becomes a ``LedgerError`` that says what to do, and nothing on
disk is changed by reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowgraph.errors import LedgerCorruptError, LedgerError, LedgerVersionError
from flowgraph.ledger.schema import SCHEMA_VERSION, LedgerDoc, NodeRecord
from flowgraph.status import NodeStatus

__all__ = ["JOURNAL_FILE", "LEDGER_FILE", "load", "stamp"]

LEDGER_FILE = "ledger.json"
JOURNAL_FILE = "events.jsonl"


def stamp(path: Path) -> tuple[tuple[int, int], ...]:
    """Sizes and change times of the ledger's files, to tell whether they changed."""
    stamps = []
    for name in (LEDGER_FILE, JOURNAL_FILE):
        try:
            st = (path / name).stat()
        except FileNotFoundError:
            st = None
        stamps.append((st.st_size, st.st_mtime_ns) if st else (-1, -1))
    return tuple(stamps)


def load(path: Path) -> tuple[LedgerDoc, int]:
    """Parse the snapshot and replay the journal lines written after it."""
    file = path / LEDGER_FILE
    if not path.is_dir():
        raise LedgerError(
            f"{path} is not a run directory; pass the directory that holds {LEDGER_FILE}"
        )
    if not file.exists():
        hint = (
            " (events.jsonl is there: the run never wrote its first snapshot)"
            if (path / JOURNAL_FILE).exists()
            else ""
        )
        raise LedgerCorruptError(f"{path} holds no {LEDGER_FILE}{hint}; start a new run instead")
    doc = _parse(file)
    offset = doc.journal.offset
    journal = path / JOURNAL_FILE
    if journal.exists():
        offset = _replay(doc, journal, offset)
    return doc, offset


def _parse(file: Path) -> LedgerDoc:
    raw = file.read_bytes()
    fix = "restore it from a backup or start a new run in another directory"
    if not raw.strip():
        raise LedgerCorruptError(f"{file} is empty; {fix}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LedgerCorruptError(f"{file} is not valid JSON ({_short(exc)}); {fix}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise LedgerCorruptError(f"{file} is not a flowgraph ledger (no schema_version); {fix}")
    version = data["schema_version"]
    if not isinstance(version, int):
        raise LedgerCorruptError(f"{file} has a non-integer schema_version {version!r}; {fix}")
    if version > SCHEMA_VERSION:
        raise LedgerVersionError(
            f"{file} was written by ledger schema {version}, this flowgraph reads up to "
            f"{SCHEMA_VERSION}; upgrade flowgraph (pip install -U flowgraph-llm) to resume it"
        )
    try:
        return LedgerDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise LedgerCorruptError(
            f"{file} is not a valid ledger: {where}: {first['msg'].lower()}; {fix}"
        ) from None


def _replay(doc: LedgerDoc, journal: Path, offset: int) -> int:
    """Apply journal lines from ``offset``; a torn last line (a crash mid-write) is ignored."""
    size = journal.stat().st_size
    if offset > size:
        raise LedgerCorruptError(
            f"{journal} is shorter ({size} bytes) than ledger.json says ({offset}); restore "
            "both from a backup or start a new run in another directory"
        )
    with journal.open("rb") as fh:
        fh.seek(offset)
        tail = fh.read()
    for line in tail.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        if not _apply(doc, entry):
            raise LedgerCorruptError(
                f"{journal} has a line at byte {offset} that is not a ledger update; restore it "
                "from a backup or start a new run in another directory"
            )
        offset += len(line)
    return offset


def _apply(doc: LedgerDoc, entry: Any) -> bool:
    """Apply one journal entry; False if it is not one flowgraph wrote."""
    if not isinstance(entry, dict):
        return False
    fields = entry.get("f") if "n" in entry else entry.get("r")
    if not isinstance(fields, dict):
        return False
    if "n" in entry:
        if not isinstance(entry["n"], str):
            return False
        target: Any = doc.nodes.get(entry["n"])
        if target is None:
            target = doc.nodes[entry["n"]] = NodeRecord()
    else:
        target = doc
    try:
        for key, value in fields.items():
            if key == "status" and target is not doc:
                value = NodeStatus(value)
            setattr(target, key, value)
    except (AttributeError, TypeError, ValueError):
        return False
    return True


def _short(exc: Exception) -> str:
    return str(exc).split("\n")[0][:120]
