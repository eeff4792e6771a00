"""The ledger: snapshot + journal, atomic writes, replay after a crash, the lock, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flowgraph import Ledger, LedgerCorruptError, LedgerLockedError, LedgerVersionError
from flowgraph.ledger.store import JOURNAL_FILE, LEDGER_FILE, SCHEMA_VERSION


def new(tmp_path: Path, **kw: object) -> Ledger:
    return Ledger.create(
        tmp_path / "run",
        run_id="r1",
        graph="g",
        fingerprint="f",
        input={"x": 1},
        **kw,  # type: ignore[arg-type]
    )


def test_create_writes_a_versioned_pretty_snapshot(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    ledger.close()
    text = (tmp_path / "run" / LEDGER_FILE).read_text()
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["graph"] == {"name": "g", "fingerprint": "f"}
    assert "\n  " in text  # pretty-printed for people


def test_updates_are_journaled_and_replayed_without_a_snapshot(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    ledger.update_node("a", status="running", attempts=1)
    ledger.update_node("a", status="passed", output={"ok": True})
    ledger.flush()
    # No close: as if the process were killed here. The snapshot is stale, the journal is not.
    doc = Ledger.read(tmp_path / "run")
    assert doc.nodes["a"].status == "passed"
    assert doc.nodes["a"].output == {"ok": True}
    stale = json.loads((tmp_path / "run" / LEDGER_FILE).read_text())
    assert "a" not in stale["nodes"]


def test_update_appends_one_line_and_does_not_rewrite_the_snapshot(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    snapshot = (tmp_path / "run" / LEDGER_FILE).stat().st_mtime_ns
    journal = tmp_path / "run" / JOURNAL_FILE
    before = journal.stat().st_size
    ledger.update_node("a", status="running")
    ledger.flush()
    assert journal.read_bytes()[before:].count(b"\n") == 1
    assert (tmp_path / "run" / LEDGER_FILE).stat().st_mtime_ns == snapshot


def test_a_torn_last_journal_line_is_ignored_and_trimmed_on_open(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    ledger.update_node("a", status="passed")
    ledger.flush()
    journal = tmp_path / "run" / JOURNAL_FILE
    with journal.open("ab") as fh:
        fh.write(b'{"n": "b", "f": {"status": "pas')  # a crash mid-write
    ledger._lock.release()  # type: ignore[union-attr]  # the process "died"
    doc = Ledger.read(tmp_path / "run")
    assert doc.nodes["a"].status == "passed" and "b" not in doc.nodes
    reopened = Ledger.open(tmp_path / "run")
    reopened.update_node("b", status="passed")
    reopened.close()
    assert Ledger.read(tmp_path / "run").nodes["b"].status == "passed"


def test_open_removes_orphaned_temp_files(tmp_path: Path) -> None:
    new(tmp_path).close()
    orphan = tmp_path / "run" / f"{LEDGER_FILE}.dead.tmp"
    orphan.write_text("{")
    Ledger.open(tmp_path / "run").close()
    assert not orphan.exists()


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    first = new(tmp_path)
    with pytest.raises(LedgerLockedError, match="being driven by another flowgraph process"):
        Ledger.open(tmp_path / "run")
    first.close()
    Ledger.open(tmp_path / "run").close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b'{"schema_version": 1, "run_id"', "is not valid JSON"),
        (b"\x00\xff\xfe binary", "is not valid JSON"),
        (b"[]", "no schema_version"),
        (b'{"schema_version": 1}', "is not a valid ledger: run_id: field required"),
    ],
)
def test_corrupt_snapshot_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    new(tmp_path).close()
    target = tmp_path / "run" / LEDGER_FILE
    target.write_bytes(content)
    with pytest.raises(LedgerCorruptError, match=message):
        Ledger.open(tmp_path / "run")
    assert target.read_bytes() == content


def test_newer_schema_is_refused_with_an_upgrade_hint(tmp_path: Path) -> None:
    new(tmp_path).close()
    target = tmp_path / "run" / LEDGER_FILE
    data = json.loads(target.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    target.write_text(json.dumps(data))
    with pytest.raises(LedgerVersionError, match="upgrade flowgraph"):
        Ledger.read(tmp_path / "run")


def test_large_outputs_go_to_an_artifact_file(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    big = "x" * 50_000
    ledger.update_node("a", status="passed", output=big)
    ledger.close()
    doc = Ledger.read(tmp_path / "run")
    assert doc.nodes["a"].output is None
    assert doc.nodes["a"].output_file == "outputs/a.json"
    assert Ledger.open(tmp_path / "run").output("a") == big


def test_snapshot_is_replaced_atomically(tmp_path: Path) -> None:
    ledger = new(tmp_path)
    inode = os.stat(tmp_path / "run" / LEDGER_FILE).st_ino
    ledger.update_node("a", status="passed")
    ledger.snapshot()
    assert os.stat(tmp_path / "run" / LEDGER_FILE).st_ino != inode  # a new file, renamed in
    assert not list((tmp_path / "run").glob("*.tmp"))
    ledger.close()


def test_each_paid_call_journals_only_itself(tmp_path: Path) -> None:
    """A node's calls are appended to its ``latency`` as deltas: the fortieth call's journal
    line is no longer than the first's, and reading the ledger back gives every call."""
    from flowgraph import Graph, Role, Tool
    from flowgraph.testing import ScriptedModel, tool_call

    async def noop() -> str:
        """Do nothing."""
        return "ok"

    replies = [tool_call("noop") for _ in range(39)] + ["done"]
    g = Graph("calls", client=ScriptedModel({"w": replies}))
    g.node("w", Role("worker", "Work.", tools=[Tool(noop)], max_turns=50), "task")
    assert g.run_sync(run_dir=tmp_path / "run").ok
    lines = [json.loads(x) for x in (tmp_path / "run" / JOURNAL_FILE).read_text().splitlines()]
    calls = [line for line in lines if "l" in line]
    assert len(calls) == 40 and all("latency" not in line["f"] for line in calls)
    sizes = [len(json.dumps(line)) for line in calls]
    assert max(sizes) - min(sizes) < 100  # the totals change by a few digits, nothing grows
    record = Ledger.read(tmp_path / "run").nodes["w"]
    assert len(record.latency) == 40 and record.spend["executor:claude-sonnet-5-5"]["calls"] == 40
