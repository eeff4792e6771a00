"""What may run away from the coordinator, `--ray` mistakes as one error line, and where a run
ran recorded for its resume (these need no cluster; tests/test_distributed.py runs the real
one)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Advisor, Graph, Ledger, Role, RunOptions, tool
from flowgraph.cli.launch import load_graph
from flowgraph.execute.executor import Steering, runs_anywhere
from flowgraph.tools import READ_ONLY

GRAPH = Path(__file__).parent / "ray_cluster" / "graphs.py"


@tool
def lookup(what: str) -> str:
    """Look something up."""
    return what


@tool(approval=True)
def deploy(where: str) -> str:
    """Deploy."""
    return where


def role_node(role: Role):  # type: ignore[no-untyped-def]
    graph = Graph("g")
    graph.node("n", role, "do it")
    return graph.validate().nodes["n"]


@pytest.mark.parametrize(
    ("role", "alone", "shared"),
    [
        (Role("plain", "p", tools=[lookup]), True, True),
        (Role("coder", "c", tools=READ_ONLY), False, True),  # the workspace is here
        (Role("adv", "a", advisor=Advisor("opus")), False, False),  # the run-wide pool is here
        (Role("ok", "o", tools=[deploy]), False, False),  # a person's decision arrives here
        (Role("ask", "a", tools=[lookup], approve=["lookup"]), False, False),
    ],
)
def test_what_runs_on_the_cluster(role: Role, alone: bool, shared: bool) -> None:
    node = role_node(role)
    assert runs_anywhere(node, shared_workspace=False) is alone
    assert runs_anywhere(node, shared_workspace=True) is shared


@pytest.mark.parametrize(
    ("address", "said"),
    [("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"), ("nowhere", "not an address")],
)
def test_ray_address_mistakes_are_one_error_line(
    cli, tmp_path: Path, address: str, said: str
) -> None:
    pytest.importorskip("ray", reason="without ray the line says to install it")
    run_dir = tmp_path / "run"
    done = cli("run", f"{GRAPH}:batch", "-i", "n=1", "-i", "log=x", "--run-dir", str(run_dir),
               "--ray", address)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()


# -- where a run ran is recorded, and a resume goes back there ----------------------------------

ONCE = """
from pathlib import Path
from flowgraph import Graph

async def work(ctx):
    if not Path(__file__).with_name("ok").exists():
        raise RuntimeError("not yet")
    return 42

graph = Graph("once")
graph.node("work", work)
"""


class Elsewhere:
    """A NodeExecutor that says its nodes ran at ``address`` and runs steps in this process:
    a run recorded as if its cluster were there, made without one (tests/test_distributed.py
    records and resumes on a real cluster)."""

    address = "127.0.0.1:1"  # where nothing listens: the recorded cluster is gone
    shared_workspace = False

    async def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def run_step(self, node: Any, ctx: Any, placed: Any) -> Any:
        placed("elsewhere")
        return await node.func(ctx)

    async def run_role(self, *args: Any) -> Any:
        raise AssertionError("the graph has no role nodes")


def test_a_new_run_records_its_executor_address() -> None:
    from flowgraph.distributed import RayExecutor

    assert RunOptions(executor=RayExecutor("10.1.2.3:6379")).settings() == {"ray": "10.1.2.3:6379"}
    assert RunOptions(executor=RayExecutor("auto")).settings() == {"ray": "auto"}
    assert "ray" not in RunOptions(max_items=2).settings()


@pytest.fixture
def ran_elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """A graph file and a failed run of it whose ledger says it ran at 127.0.0.1:1."""
    graph_file = tmp_path / "once.py"
    graph_file.write_text(ONCE)
    run_dir = tmp_path / "run"
    result = load_graph(str(graph_file)).run_sync(run_dir=run_dir, executor=Elsewhere())
    assert result.status == "failed"
    assert Ledger.read(run_dir).settings == {"ray": "127.0.0.1:1"}
    return graph_file, run_dir


@pytest.mark.parametrize("command", ["resume", "run"])
def test_resume_goes_back_to_the_recorded_cluster_and_says_so_when_it_is_gone(
    cli, ran_elsewhere: tuple[Path, Path], command: str
) -> None:
    pytest.importorskip("ray", reason="without ray the line says to install it")
    graph_file, run_dir = ran_elsewhere
    (graph_file.parent / "ok").touch()  # a local resume would pass: it must not run here
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    again = {"resume": ["resume", str(run_dir)],
             "run": ["run", str(graph_file), "--run-dir", str(run_dir)]}  # fmt: skip
    done = cli(*again[command])
    assert done.returncode == 2, done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {run_dir} was started with --ray 127.0.0.1:1 and resumes "
                           "there, but cannot reach the Ray cluster at 127.0.0.1:1")  # fmt: skip
    assert f"`flowgraph resume {run_dir} --ray ADDRESS`" in line and "`--ray local`" in line
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_ray_local_resumes_a_cluster_run_on_this_machine(
    cli, ran_elsewhere: tuple[Path, Path]
) -> None:
    graph_file, run_dir = ran_elsewhere
    status = cli("status", str(run_dir))
    assert "settings: ray=127.0.0.1:1 (a resume keeps them)" in status.stdout
    (graph_file.parent / "ok").touch()
    done = cli("resume", str(run_dir), "--ray", "local")
    assert done.returncode == 0, done.stderr
    doc = Ledger.read(run_dir)
    assert doc.status == "passed" and doc.nodes["work"].output == 42
    assert doc.nodes["work"].placed is None  # ran in this process, not "elsewhere"
    assert doc.settings == {"ray": "127.0.0.1:1"}  # the next plain resume still goes there


# -- steering a role loop that runs elsewhere ---------------------------------------------------

INSTRUCTION = "New instruction from a person: "


class LoopElsewhere:
    """A NodeExecutor that runs role loops in this process as a worker would: steered only
    through the ``Steering`` it is given (taken at dispatch and before each turn), every
    delta sent back through ``report.note`` and ``steering.noted``. ``lose``: its first
    dispatch is lost just after it was handed the node's messages, before it journaled them
    (tests/test_distributed.py loses a real worker)."""

    address = None
    shared_workspace = False

    def __init__(self, *, lose: bool = False) -> None:
        self.lose = lose
        self.handed: list[str] = []

    async def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def run_step(self, node: Any, ctx: Any, placed: Any) -> Any:
        return await node.func(ctx)

    async def run_role(
        self, node: Any, ctx: Any, call: Any, report: Any, emit: Any, placed: Any,
        steering: Steering | None = None,
    ) -> Any:  # fmt: skip
        from flowgraph.agent.loop import run_role

        assert steering is not None
        handed = steering.take(again=True)
        self.handed += handed
        if self.lose:
            raise RuntimeError("the worker was lost")
        note = report.note

        def noted(delta: dict[str, Any]) -> None:
            note(delta)
            steering.noted(delta)

        def steer(turn: int) -> list[str]:
            taken = [*handed, *steering.take()]
            handed.clear()
            return taken

        report.note = noted
        return await run_role(node, ctx, call, report, emit, steering=steer)


def test_steering_handed_to_a_lost_loop_stays_pending_and_a_resume_delivers_it(
    tmp_path: Path,
) -> None:
    from flowgraph.testing import ScriptedModel
    from flowgraph.testing.scripted import text, tool_call

    def two_turns(request: Any) -> Any:
        done = any(m["role"] == "assistant" for m in request.messages)
        return text("final") if done else tool_call("lookup", what="x")

    model = ScriptedModel({"writer": two_turns})
    graph = Graph("steered", client=model)

    async def prep(ctx: Any) -> str:
        await asyncio.sleep(0.3)  # time to steer the writer before it starts
        return "ready"

    graph.node("prep", prep)
    graph.node("writer", Role("writer", "w", tools=[lookup]), "Write {prep}", after=["prep"])
    run_dir = tmp_path / "run"
    lost = LoopElsewhere(lose=True)

    async def first() -> Any:
        run = graph.start(run_dir=run_dir, executor=lost)
        while not Ledger.exists(run_dir):
            await asyncio.sleep(0.01)
        run.steer("writer", "use British spelling")
        return await run

    assert asyncio.run(first()).status == "failed"
    assert lost.handed == ["use British spelling"]  # handed over, then the loop was lost
    assert [s["turn"] for s in Ledger.read(run_dir).nodes["writer"].steering] == [None]
    assert model.requests == []

    again = LoopElsewhere()
    result = graph.run_sync(run_dir=run_dir, executor=again)  # the resume
    assert result.ok, result.errors
    steering = Ledger.read(run_dir).nodes["writer"].steering
    assert [(s["text"], s["turn"]) for s in steering] == [("use British spelling", 1)]
    asked = [json.dumps(r.messages) for r in model.requests]
    assert [a.count(INSTRUCTION + "use British spelling") for a in asked] == [1, 1]
