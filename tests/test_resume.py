"""Resume: passed nodes are never re-run or re-paid, edits re-run what they touch, and a
SIGKILLed process's run completes in a new process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flowgraph import Context, Graph, Ledger, Role
from flowgraph.testing import ScriptedModel

GRAPH_FILE = """
import asyncio, os
from pathlib import Path
from flowgraph import Graph, Context

COUNT = Path(os.environ["FG_COUNT_FILE"])

async def work(ctx: Context) -> str:
    await asyncio.sleep(0.15)
    with COUNT.open("a") as fh:     # the side effect the ledger knows nothing of
        fh.write(ctx.node + "\\n")
    return ctx.node

graph = Graph("crashy", max_concurrency=2)
graph.node("root", work)
for i in range(8):
    graph.node(f"mid{i}", work, after=["root"])
graph.node("join", work, after=[f"mid{i}" for i in range(8)])
graph.node("last", work, after=["join"])
"""


class LedgerWatcher(threading.Thread):
    """Reads ledger.json over and over, failing if it is ever not a complete JSON document."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.reads = 0
        self.bad: list[str] = []
        self.passed: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                self.bad.append(f"{exc}: {raw[:80]!r}")
                continue
            self.reads += 1
            self.passed = {n for n, r in data["nodes"].items() if r["status"] == "passed"}
            time.sleep(0.002)


@pytest.mark.slow
def test_sigkilled_run_resumes_in_a_new_process_without_rerunning_passed_nodes(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "crashy.py").write_text(GRAPH_FILE)
    count = tmp_path / "count.log"
    env = {**__import__("os").environ, "FG_COUNT_FILE": str(count)}
    run_dir = tmp_path / "run"
    watcher = LedgerWatcher(run_dir / "ledger.json")
    watcher.start()
    child = subprocess.Popen(
        [*flowgraph_exe, "run", "crashy.py", "--run-dir", str(run_dir)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(watcher.passed) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.005)
    assert child.poll() is None, "the child finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    passed_before = {n for n, r in Ledger.read(run_dir).nodes.items() if r.status == "passed"}
    assert len(passed_before) >= 3
    assert len(passed_before) < 11

    resumed = subprocess.run(
        [*flowgraph_exe, "resume", str(run_dir)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    watcher.stop.set()
    watcher.join()
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    runs = count.read_text().split()
    for node in passed_before:
        assert runs.count(node) == 1, f"{node} ran {runs.count(node)} times"
    doc = Ledger.read(run_dir)
    assert doc.status == "passed"
    assert all(r.status == "passed" for r in doc.nodes.values())
    assert set(runs) == set(doc.nodes)
    assert watcher.bad == [] and watcher.reads > 10


def test_resume_reuses_passed_outputs_and_pays_nothing_again(tmp_path: Path) -> None:
    model = ScriptedModel({"plan": ["the plan"], "build": ["built from {plan}"]})
    g = Graph("g")
    g.node("plan", Role("architect", "x"), "plan")
    g.node("build", Role("builder", "x"), "build from {plan}", after=["plan"])
    first = g.run_sync(client=model, run_dir=tmp_path / "run")
    assert first.ok and len(model.requests) == 2
    again = g.run_sync(client=model, run_dir=tmp_path / "run")
    assert again.ok and again.executed == ()
    assert len(model.requests) == 2  # not one more model call
    assert again.outputs == first.outputs


def build_team(review_task: str = "review {api}") -> Graph:
    async def step(ctx: Context) -> str:
        return ctx.node

    g = Graph("team")
    g.node("plan", Role("architect", "x"), "plan")
    g.node("api", Role("backend", "x"), "api for {plan}", after=["plan"])
    g.node("ui", Role("frontend", "x"), "ui for {plan}", after=["plan"])
    g.node("review", Role("reviewer", "x"), review_task, after=["api"])
    g.node("ship", step, after=["review", "ui"])
    return g


def test_editing_one_node_reruns_it_and_its_descendants_only(tmp_path: Path) -> None:
    model = ScriptedModel()
    assert build_team().run_sync(client=model, run_dir=tmp_path / "run").ok
    result = build_team("review {api} strictly").run_sync(client=model, run_dir=tmp_path / "run")
    assert result.ok
    assert set(result.executed) == {"review", "ship"}


def test_failed_nodes_retry_on_resume_and_skipped_ones_follow(tmp_path: Path) -> None:
    calls = {"n": 0}

    async def flaky(ctx: Context) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first time fails")
        return "ok"

    async def after(ctx: Context) -> str:
        return "after"

    def build() -> Graph:
        g = Graph("g")
        g.node("flaky", flaky)
        g.node("after", after, after=["flaky"])
        return g

    first = build().run_sync(run_dir=tmp_path / "run")
    assert first.statuses == {"flaky": "failed", "after": "skipped"}
    doc = Ledger.read(tmp_path / "run")
    assert "fix the failure of flaky" in doc.next_step
    second = build().run_sync(run_dir=tmp_path / "run")
    assert second.ok and set(second.executed) == {"flaky", "after"}
    assert Ledger.read(tmp_path / "run").nodes["flaky"].attempts == 2


SLOW_FILE = """
import asyncio
from flowgraph import Graph, Context

async def slow(ctx: Context) -> None:
    await asyncio.sleep(30)

graph = Graph("slow")
graph.node("slow", slow)
"""


@pytest.mark.slow
def test_second_process_on_the_same_run_gets_a_clear_error_and_changes_nothing(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "slow.py").write_text(SLOW_FILE)
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [*flowgraph_exe, "run", "slow.py", "--run-dir", str(run_dir)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (run_dir / "ledger.json").exists() and "running" in (
                run_dir / "ledger.json"
            ).read_text():
                break
            time.sleep(0.02)
        time.sleep(0.6)  # let the first process's periodic snapshot settle
        before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        second = subprocess.run(
            [*flowgraph_exe, "resume", str(run_dir)], cwd=tmp_path,
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    assert second.returncode == 2
    assert second.stderr.strip().startswith("error: ")
    assert "being driven by another flowgraph process" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert before == after
    assert first.returncode == 130
    assert Ledger.read(run_dir).nodes["slow"].status == "interrupted"


def test_python_api_resume_via_run_dir(tmp_path: Path) -> None:
    ran: list[str] = []

    async def step(ctx: Context) -> str:
        ran.append(ctx.node)
        return ctx.node

    g = Graph("g")
    g.node("a", step)
    g.run_sync(run_dir=tmp_path / "run")
    g.run_sync(run_dir=tmp_path / "run")
    assert ran == ["a"]
    assert sys.modules["flowgraph"].Ledger.read(tmp_path / "run").status == "passed"


EDITABLE = """
from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel

async def check(output, ctx):
    return None  # CHECK

def lookup(term: str) -> str:
    '''Look a term up.'''
    return "found " + term  # TOOL

client = ScriptedModel({"write": ["a draft"], "after": ["done"]})
writer = Role("writer", "You write.", model="haiku", tools=[lookup], check=check)
graph = Graph("editable", client=client)
graph.node("write", writer, "Write it.")
graph.node("after", Role("editor", "You edit."), "Edit: {write}", after=["write"])
"""


def _run_file(path: Path, run_dir: Path) -> tuple[tuple[str, ...], int]:
    from flowgraph.cli.launch import load_graph

    graph = load_graph(str(path))
    result = graph.run_sync(run_dir=run_dir)
    assert result.ok, result.errors
    assert isinstance(graph.client, ScriptedModel)
    return result.executed, len(graph.client.requests)


def test_editing_a_roles_check_or_a_tools_body_reruns_the_node_on_resume(tmp_path: Path) -> None:
    path, run_dir = tmp_path / "editable.py", tmp_path / "run"
    path.write_text(EDITABLE)
    assert _run_file(path, run_dir) == (("write", "after"), 2)
    assert _run_file(path, run_dir) == ((), 0)  # nothing changed: nothing runs or is paid

    path.write_text(EDITABLE.replace("return None  # CHECK", "return None if output else 'empty'"))
    assert _run_file(path, run_dir) == (("write", "after"), 2)  # the check's node and below

    path.write_text(path.read_text().replace('"found " + term', '"found: " + term'))
    assert _run_file(path, run_dir) == (("write", "after"), 2)  # the tool's node and below
