"""Patterns across real processes: a SIGKILLed map, race or review loop resumes in a new process
without redoing finished work; an approval gate and steering travel between processes through
the CLI; a long checklist is finished by successive `--max-items` runs."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Ledger
from flowgraph.ledger.store import LedgerDoc

pytestmark = pytest.mark.slow

COMMON = """
import asyncio, os
from pathlib import Path
from flowgraph import Context, Graph, Role
from flowgraph.testing import ScriptedModel
from flowgraph.testing.scripted import text, tool_call

COUNT = Path(os.environ["FG_COUNT_FILE"])
NAP = float(os.environ.get("FG_NAP", "0"))

def note(what):
    with COUNT.open("a") as fh:    # the side effect the ledger knows nothing of
        fh.write(what + "\\n")

def turn(request):
    return sum(1 for m in request.messages if m["role"] == "assistant")

async def nap() -> str:
    \"\"\"Take a while.\"\"\"
    await asyncio.sleep(NAP)
    return "rested"

def role(name, **kw):
    return Role(name, "You are the " + name, cache=False, tools=[nap], **kw)
"""

MAP_FILE = (
    COMMON
    + """
async def listing(ctx: Context) -> list[int]:
    return list(range(12))

async def work(ctx: Context) -> int:
    await asyncio.sleep(0.1)
    note(str(ctx.item))
    return ctx.item * 10

graph = Graph("crashy_map")
graph.node("listing", listing)
graph.map("m", work, over="listing", concurrency=2)
"""
)

RACE_FILE = (
    COMMON
    + """
def fast(request):
    note("fast")
    return "fast: bad"

def slow(request):
    if turn(request) == 0:
        note("slow")
        return tool_call("nap")
    return "slow: good"

async def check(output, ctx: Context) -> bool:
    return "good" in str(output)

graph = Graph("crashy_race", client=ScriptedModel({"race.fast": fast, "race.slow": slow}))
graph.race("race", [role("fast"), role("slow")], "Solve it", check=check)
"""
)

LOOP_FILE = (
    COMMON
    + """
from pydantic import BaseModel

class Verdict(BaseModel):
    approved: bool
    comments: str = ""

def counted(name, reply):
    def answer(request):
        note(name)
        return reply
    return answer

def revise(request):
    if turn(request) == 0:
        note("loop.revise2")
        return tool_call("nap")
    return "v2 with tests"

script = {
    "impl": counted("impl", "v1"),
    "loop.review1": counted("loop.review1", '{"approved": false, "comments": "add tests"}'),
    "loop.revise2": revise,
    "loop.review2": counted("loop.review2", '{"approved": true, "comments": "good"}'),
}
graph = Graph("crashy_loop", client=ScriptedModel(script, default=None))
graph.node("impl", role("coder"), "Write the parser")
graph.review_loop("loop", Role("reviewer", "x", cache=False, output=Verdict), work="impl")
"""
)

GATE_FILE = """
from flowgraph import Context, Graph

async def prep(ctx: Context) -> str:
    return "prepared"

async def deploy(ctx: Context) -> str:
    return "deployed with note: " + ctx.outputs["gate"]["note"]

async def docs(ctx: Context) -> str:
    return "documented"

graph = Graph("gated")
graph.node("prep", prep)
graph.gate("gate", "deploy to production?", after=["prep"])
graph.node("deploy", deploy, after=["gate"])
graph.node("docs", docs)
"""

STEER_FILE = (
    COMMON
    + """
PREFIX = "New instruction from a person: "

def latest_instruction(request):
    found = ""
    for message in request.messages:
        if isinstance(message["content"], list):
            for block in message["content"]:
                body = block.get("text", "") if isinstance(block, dict) else ""
                if body.startswith(PREFIX):
                    found = body[len(PREFIX):]
    return found

def writer(request):
    note(str(turn(request) + 1))
    said = latest_instruction(request)
    if said or turn(request) >= 45:
        return "final; instruction: " + (said or "none")
    return tool_call("nap")

graph = Graph("steered", client=ScriptedModel({"writer": writer}, delay=0.2))
graph.node("writer", role("writer", max_turns=50), "Write the intro")
"""
)

CHECKLIST_FILE = """
import os
from pathlib import Path
from flowgraph import Context, Graph

BROKEN = Path(os.environ["FG_BROKEN_FILE"])
COUNT = Path(os.environ["FG_COUNT_FILE"])

async def init(ctx: Context) -> list[str]:
    return ["a", "b", "c", "d", "e", "f"]

async def build(ctx: Context) -> dict:
    with COUNT.open("a") as fh:
        fh.write(ctx.item + "\\n")
    return {"item": ctx.item, "passes": True}    # the work's own claim does not count

async def check(item: str, output, ctx: Context):
    broken = BROKEN.read_text().split() if BROKEN.exists() else []
    return f"{item} does not pass its test" if item in broken else None

graph = Graph("long_haul")
graph.checklist("features", init, build, check=check)
"""


# -- helpers --------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Reads the ledger over and over (as `flowgraph status` would) until ``ready(doc)``."""

    def __init__(self, run_dir: Path, ready: Callable[[LedgerDoc], bool]) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.ready = run_dir, ready
        self.hit = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and not self.hit.is_set():
            try:
                doc = Ledger.read(self.run_dir)
            except Exception:  # not created yet
                time.sleep(0.01)
                continue
            if self.ready(doc):
                self.hit.set()
            time.sleep(0.005)


def passed(doc: LedgerDoc, name: str) -> bool:
    record = doc.nodes.get(name)
    return record is not None and record.status == "passed"


def kill_when(
    exe: list[str], tmp_path: Path, graph_file: str, ready: Callable[[LedgerDoc], bool],
    env: dict[str, str],
) -> Path:  # fmt: skip
    """Run ``graph_file`` in a child process and SIGKILL it once ``ready(ledger)`` holds."""
    (tmp_path / "graph.py").write_text(graph_file)
    run_dir = tmp_path / "run"
    watcher = Watcher(run_dir, ready)
    watcher.start()
    child = subprocess.Popen(
        [*exe, "run", "graph.py", "--run-dir", str(run_dir)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not watcher.hit.is_set() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.005)
        assert child.poll() is None, "the child ended before it could be killed: " + str(
            child.stderr.read() if child.stderr else ""
        )
        assert watcher.hit.is_set(), "the ledger never reached the point to kill at"
        child.send_signal(signal.SIGKILL)
    finally:
        watcher.stop.set()
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stderr:
            child.stderr.close()
    watcher.join()
    return run_dir


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FG_COUNT_FILE": str(tmp_path / "count.log"), **extra}


def counts(tmp_path: Path) -> list[str]:
    path = tmp_path / "count.log"
    return path.read_text().split() if path.exists() else []


def cli(
    exe: list[str], tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exe, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


# -- SIGKILL mid-pattern ---------------------------------------------------------------------


def test_sigkill_in_the_middle_of_a_map_resumes_without_rerunning_passed_items(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    def three_items_passed(doc: LedgerDoc) -> bool:
        return sum(1 for r in doc.nodes.values() if r.parent == "m" and r.status == "passed") >= 3

    env = environ(tmp_path)
    run_dir = kill_when(flowgraph_exe, tmp_path, MAP_FILE, three_items_passed, env)
    before = Ledger.read(run_dir)
    passed_before = {n for n, r in before.nodes.items() if r.parent == "m" and r.status == "passed"}
    assert 3 <= len(passed_before) < 12
    assert before.nodes["m"].status == "running"

    resumed = cli(flowgraph_exe, tmp_path, "resume", str(run_dir), env=env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "passed"
    assert doc.nodes["m"].output == [i * 10 for i in range(12)]
    runs = counts(tmp_path)
    for name in passed_before:
        item = name[len("m[") : -1]
        assert runs.count(item) == 1, f"{name} ran {runs.count(item)} times"
    assert set(runs) == {str(i) for i in range(12)}
    assert all(doc.nodes[f"m[{i}]"].status == "passed" for i in range(12))


def test_sigkill_in_the_middle_of_a_race_does_not_rerun_a_finished_contender(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    def fast_done_slow_running(doc: LedgerDoc) -> bool:
        slow = doc.nodes.get("race.slow")
        return passed(doc, "race.fast") and slow is not None and slow.status == "running"

    run_dir = kill_when(flowgraph_exe, tmp_path, RACE_FILE, fast_done_slow_running,
                        environ(tmp_path, FG_NAP="30"))  # fmt: skip
    before = Ledger.read(run_dir)
    assert before.nodes["race.fast"].output == "fast: bad"
    assert counts(tmp_path).count("fast") == 1

    resumed = cli(flowgraph_exe, tmp_path, "resume", str(run_dir),
                  env=environ(tmp_path, FG_NAP="0.05"))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "passed"
    assert doc.nodes["race"].output == {"winner": "slow", "output": "slow: good"}
    runs = counts(tmp_path)
    assert runs.count("fast") == 1, "the finished contender ran again"
    # Killed mid-run in its nap: its recorded first turn is not asked again (issue 9: durable
    # to the turn); only the nap in flight runs again, then its second turn answers.
    assert runs.count("slow") == 1
    assert doc.nodes["race.fast"].check_passed is False
    assert doc.nodes["race.slow"].check_passed is True


def test_sigkill_in_the_middle_of_a_review_loop_resumes_at_its_round(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    def round_one_passed(doc: LedgerDoc) -> bool:
        revise = doc.nodes.get("loop.revise2")
        return passed(doc, "loop.review1") and revise is not None and revise.status == "running"

    run_dir = kill_when(flowgraph_exe, tmp_path, LOOP_FILE, round_one_passed,
                        environ(tmp_path, FG_NAP="30"))  # fmt: skip
    assert counts(tmp_path) == ["impl", "loop.review1", "loop.revise2"]

    resumed = cli(flowgraph_exe, tmp_path, "resume", str(run_dir),
                  env=environ(tmp_path, FG_NAP="0.05"))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "passed"
    out = doc.nodes["loop"].output
    assert out["approved"] is True and out["rounds"] == 2 and out["work"] == "v2 with tests"
    runs = counts(tmp_path)
    assert runs.count("impl") == 1
    assert runs.count("loop.review1") == 1, "round 1 was reviewed again"
    # revise2 was killed in its tool call: its recorded turn is not asked again (issue 9)
    assert runs.count("loop.revise2") == 1
    assert runs.count("loop.review2") == 1


# -- approval gate and steering between processes ------------------------------------------


def test_gate_round_trip_through_the_cli_in_child_processes(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "gated.py").write_text(GATE_FILE)
    run_dir = tmp_path / "run"
    first = cli(flowgraph_exe, tmp_path, "run", "gated.py", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr + first.stdout
    assert "waiting_approval" in first.stdout
    assert f"flowgraph approve {run_dir} gate" in first.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "waiting_approval"
    assert doc.nodes["deploy"].status == "pending" and doc.nodes["docs"].status == "passed"

    approve = cli(flowgraph_exe, tmp_path, "approve", str(run_dir), "gate", "--note", "go ahead")
    assert approve.returncode == 0, approve.stderr
    resumed = cli(flowgraph_exe, tmp_path, "resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "passed"
    assert doc.nodes["deploy"].output == "deployed with note: go ahead"


def test_gate_rejection_through_the_cli_ends_the_dependents_with_the_note(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "gated.py").write_text(GATE_FILE)
    run_dir = tmp_path / "run"
    first = cli(flowgraph_exe, tmp_path, "run", "gated.py", "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr + first.stdout
    reject = cli(flowgraph_exe, tmp_path, "reject", str(run_dir), "gate", "--note", "too risky")
    assert reject.returncode == 0, reject.stderr
    resumed = cli(flowgraph_exe, tmp_path, "resume", str(run_dir))
    assert resumed.returncode == 1, resumed.stderr + resumed.stdout  # a failed run
    doc = Ledger.read(run_dir)
    assert doc.status == "failed"
    assert doc.nodes["gate"].status == "failed"
    assert "too risky" in (doc.nodes["gate"].error or "")
    assert doc.nodes["deploy"].status == "skipped"
    assert doc.nodes["docs"].status == "passed"


def test_steering_from_a_second_process_reaches_the_running_node(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "steered.py").write_text(STEER_FILE)
    run_dir = tmp_path / "run"
    env = environ(tmp_path, FG_NAP="0")
    driver = subprocess.Popen(
        [*flowgraph_exe, "run", "steered.py", "--run-dir", str(run_dir)], cwd=tmp_path,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not counts(tmp_path) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.01)
        assert counts(tmp_path), "the writer never asked its model"
        sent = cli(flowgraph_exe, tmp_path, "steer", str(run_dir), "writer", "mention owls",
                   env=env)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        out, err = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, err + out
    doc = Ledger.read(run_dir)
    record = doc.nodes["writer"]
    assert record.output == "final; instruction: mention owls"
    assert len(record.steering) == 1
    delivered = record.steering[0]
    assert delivered["text"] == "mention owls"
    # seen at the turn after the one in flight: the node was not restarted
    assert isinstance(delivered["turn"], int) and delivered["turn"] >= 2
    assert record.turns == delivered["turn"]
    assert counts(tmp_path) == [str(t) for t in range(1, record.turns + 1)]


# -- the long-horizon checklist --------------------------------------------------------------


def _features(run_dir: Path) -> list[tuple[str, bool]]:
    return [(f.name, f.passes) for f in Ledger.read(run_dir).features]


def test_checklist_is_finished_by_three_processes_of_two_items_each(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "long.py").write_text(CHECKLIST_FILE)
    run_dir = tmp_path / "run"
    env = environ(tmp_path, FG_BROKEN_FILE=str(tmp_path / "broken.txt"))
    commands: list[list[str]] = [
        ["run", "long.py", "--run-dir", str(run_dir), "--max-items", "2"],
        ["resume", str(run_dir), "--max-items", "2"],
        ["resume", str(run_dir), "--max-items", "2"],
    ]
    expected: list[tuple[int, str]] = [(2, "incomplete"), (4, "incomplete"), (6, "passed")]
    for args, (passes, status) in zip(commands, expected, strict=True):
        done = cli(flowgraph_exe, tmp_path, *args, env=env)
        assert done.returncode == 0, done.stderr + done.stdout
        features = _features(run_dir)
        assert len(features) == 6
        assert sum(p for _, p in features) == passes
        assert [p for _, p in features] == [True] * passes + [False] * (6 - passes)
        doc = Ledger.read(run_dir)
        assert doc.status == status
        assert status in done.stdout
    assert counts(tmp_path) == ["a", "b", "c", "d", "e", "f"]  # each item worked on once


def test_checklist_failing_check_leaves_the_item_unpassed_and_next_step_names_it(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "long.py").write_text(CHECKLIST_FILE)
    run_dir = tmp_path / "run"
    broken = tmp_path / "broken.txt"
    broken.write_text("b")
    env: dict[str, Any] = environ(tmp_path, FG_BROKEN_FILE=str(broken))
    first = cli(flowgraph_exe, tmp_path, "run", "long.py", "--run-dir", str(run_dir),
                "--max-items", "2", env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr + first.stdout
    doc = Ledger.read(run_dir)
    assert doc.status == "incomplete"
    # the work for b ran and even claimed success; only the check decides
    assert dict(_features(run_dir)) == {"a": True, "b": False, "c": False, "d": False,
                                        "e": False, "f": False}  # fmt: skip
    assert "'b'" in doc.next_step and "b does not pass its test" in doc.next_step

    broken.write_text("")  # fixed
    second = cli(flowgraph_exe, tmp_path, "resume", str(run_dir), "--max-items", "2", env=env)
    assert second.returncode == 0, second.stderr + second.stdout
    assert dict(_features(run_dir)) == {"a": True, "b": True, "c": True, "d": False,
                                        "e": False, "f": False}  # fmt: skip
    assert counts(tmp_path) == ["a", "b", "b", "c"]  # b worked on again, a not
