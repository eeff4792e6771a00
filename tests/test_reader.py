"""The reader refuses what it cannot trust, and trusts what a crash legitimately leaves: a torn
last journal line, and a run directory killed while it was being created."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult

from flowgraph import Ledger
from flowgraph.errors import LedgerCorruptError

TINY = """\
from flowgraph import Context, Graph

tiny = Graph("tiny", inputs=["topic"])

async def gather(ctx: Context) -> str:
    return "notes on " + ctx.input["topic"]

async def write(ctx: Context) -> str:
    return "report: " + ctx.outputs["gather"]

tiny.node("gather", gather)
tiny.node("write", write, after=["gather"])
"""


def test_source_is_in_the_very_first_snapshot(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "run", run_id="r", graph="g", fingerprint="f", input={},
                           source={"target": "g.py:g", "kwargs": {}})  # fmt: skip
    try:  # before any journal line: a kill now must still leave a resumable run
        assert (tmp_path / "run" / "events.jsonl").read_bytes() == b""
        first = json.loads((tmp_path / "run" / "ledger.json").read_text())
        assert first["source"] == {"target": "g.py:g", "kwargs": {}}
    finally:
        ledger.close()


def test_a_torn_last_line_is_dropped_and_the_run_goes_on(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "run", run_id="r", graph="g", fingerprint="f", input={})
    ledger.update_node("a", attempts=1)
    ledger.close()
    journal = tmp_path / "run" / "events.jsonl"
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"n": "a", "f": {"attem')  # a crash mid-append
    assert Ledger.read(tmp_path / "run").nodes["a"].attempts == 1
    assert journal.read_bytes().endswith(b'"attem')  # reading changes nothing
    ledger = Ledger.open(tmp_path / "run")
    ledger.update_node("a", attempts=2)
    ledger.close()
    assert journal.read_bytes().startswith(good) and b"attem\n" not in journal.read_bytes()
    assert Ledger.read(tmp_path / "run").nodes["a"].attempts == 2


def test_a_bad_line_before_good_ones_is_refused_and_nothing_is_truncated(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "run", run_id="r", graph="g", fingerprint="f", input={})
    ledger.close()
    journal = tmp_path / "run" / "events.jsonl"
    journal.write_bytes(b'{"n": "a", "f": {"attempts": 1}}\n' * 3 + b"oops\n"
                        + b'{"n": "a", "f": {"attempts": 5}}\n')  # fmt: skip
    before = journal.read_bytes()
    with pytest.raises(LedgerCorruptError, match=r"events\.jsonl line 4 "):
        Ledger.open(tmp_path / "run")
    assert journal.read_bytes() == before


LEFTOVERS = {
    "lock only": {"ledger.lock": b""},
    "lock and empty journal": {"ledger.lock": b"", "events.jsonl": b""},
    "temp snapshot": {"ledger.lock": b"", "events.jsonl": b"", "ledger.json.1a2b3c4d.tmp": b"{"},
}


@pytest.mark.parametrize("files", LEFTOVERS.values(), ids=LEFTOVERS.keys())
def test_a_run_killed_during_creation_is_created_again(
    files: dict[str, bytes], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "tiny.py").write_text(textwrap.dedent(TINY))
    run = tmp_path / "run"
    run.mkdir()
    for name, data in files.items():
        (run / name).write_bytes(data)
    resumed = cli("resume", "run", cwd=tmp_path)
    assert resumed.returncode == 2 and "flowgraph run" in resumed.stderr
    done = cli("run", "tiny.py", "--run-dir", "run", "--input", "topic=owls", cwd=tmp_path)
    assert done.returncode == 0, done
    doc = Ledger.read(run)
    assert doc.status == "passed" and doc.source is not None
    assert not list(run.glob("ledger.json.*.tmp"))


def test_a_directory_with_more_than_leftovers_is_still_refused(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "tiny.py").write_text(textwrap.dedent(TINY))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ledger.lock").write_bytes(b"")
    (tmp_path / "run" / "events.jsonl").write_bytes(b'{"r": {"status": "running"}}\n')
    done = cli("run", "tiny.py", "--run-dir", "run", "--input", "topic=owls", cwd=tmp_path)
    assert done.returncode == 2 and "ledger.json" in done.stderr
    assert (tmp_path / "run" / "events.jsonl").read_bytes() == b'{"r": {"status": "running"}}\n'
