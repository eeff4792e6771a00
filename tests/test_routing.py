"""Routing: a classifier picks the branch that runs (``graph.route``) or the model a role node
runs on (``graph.route_model``). Easy inputs run on haiku and hard ones on opus (the ledger
says which model served), the unchosen branch is ``not_taken`` in ``flowgraph status``, a
resume keeps the recorded choice without asking the classifier again, and bad routes are
refused before anything runs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult
from pydantic import BaseModel

from flowgraph import Context, Graph, GraphError, Ledger, NodeStatus, Role, RunStatus
from flowgraph.evals import Config, Suite, report, run_suite
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing import ScriptedModel
from flowgraph.testing.emulator import Emulator, Reply

ROOT = Path(__file__).resolve().parent.parent
HAIKU, OPUS = "claude-haiku-5-5", "claude-opus-5-5"
HARD = "Why does sync crash after an upgrade?"
EASY = "How do I reset my password?"


def ledger(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "ledger.json").read_text())
    return doc


def triage_graph(classify: Any, *, task: str | None = None) -> Graph:
    """triage -> quick (haiku) | expert (opus) -> reply (joins); more (expert's branch only)."""
    g = Graph("triage", inputs=["question"])
    g.route("triage", classify, {"easy": "quick", "hard": "expert"}, task=task)
    g.node("quick", Role("quick", "Answer briefly.", model="haiku"), "Answer: {question}")
    g.node("expert", Role("expert", "Reason, then answer.", model="opus"), "Answer: {question}")

    @g.step(after=["quick", "expert"])
    async def reply(ctx: Context) -> list[str]:
        return sorted(ctx.outputs)

    @g.step(after=["expert"])
    async def more(ctx: Context) -> str:
        return "follow-up"

    return g


class Counted:
    """A step classifier that counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, ctx: Context) -> str:
        self.calls += 1
        return "hard" if "why" in ctx.input["question"].lower() else "easy"


def counted() -> tuple[Counted, Any]:
    counter = Counted()

    async def classify(ctx: Context) -> str:
        return await counter(ctx)

    return counter, classify


async def _hard(ctx: Context) -> str:
    return "hard"


async def _done(ctx: Context) -> str:
    return ctx.node


# -- the acceptance: haiku for easy, opus for hard, through the real SDK ---------------------


def test_easy_input_runs_on_haiku_and_hard_on_opus_through_the_real_sdk(tmp_path: Path) -> None:
    def classifier(body: dict[str, Any]) -> Reply:
        asked = json.dumps(body["messages"][0]["content"]).lower()
        return Reply.text("hard" if "why" in asked else "easy")

    triager = Role("triager", "Sort questions into easy and hard.", model="haiku")
    g = triage_graph(triager, task="Question: {question}")
    with Emulator({HAIKU: classifier, OPUS: ["The cursor format changed."]}) as emu:
        runs = {}
        for name, question in (("easy", EASY), ("hard", HARD)):  # run_sync closes its client
            client = AnthropicModel("k", base_url=emu.base_url)
            runs[name] = g.run_sync({"question": question}, run_dir=tmp_path / name, client=client)
        easy, hard = runs["easy"], runs["hard"]
        served = [r.model for r in emu.requests if r.model]
    assert easy.ok and hard.ok
    assert served == [HAIKU, HAIKU, HAIKU, OPUS]  # classify, quick | classify, expert
    nodes = ledger(tmp_path / "easy")["nodes"]
    assert nodes["quick"]["status"] == "passed" and nodes["quick"]["model"] == HAIKU
    assert nodes["quick"]["served"][0]["model"] == HAIKU
    assert nodes["expert"]["status"] == "not_taken" and nodes["expert"]["model"] is None
    assert nodes["more"]["status"] == "not_taken"  # only below the branch not taken
    assert nodes["triage"]["route"] == "easy" and nodes["triage"]["output"] == {"route": "easy"}
    assert nodes["triage.classify"]["model"] == HAIKU
    nodes = ledger(tmp_path / "hard")["nodes"]
    assert nodes["expert"]["status"] == "passed" and nodes["expert"]["model"] == OPUS
    assert nodes["expert"]["served"][0]["model"] == OPUS
    assert nodes["quick"]["status"] == "not_taken" and nodes["more"]["status"] == "passed"
    assert hard["reply"] == ["expert", "triage"]  # the join saw only what ran
    assert easy.statuses["expert"] == NodeStatus.NOT_TAKEN
    with pytest.raises(Exception, match="it is not_taken"):
        easy["expert"]


def test_status_shows_the_unchosen_branch_not_taken(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    run_dir = tmp_path / "hard"
    ran = cli("run", "examples/routing.py", "--run-dir", str(run_dir),
              "--input", f"question={HARD}", cwd=ROOT)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "quick: not_taken: route 'triage' chose 'hard'" in ran.stdout
    shown = cli("status", str(run_dir))
    assert shown.returncode == 0
    rows = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "not_taken" in rows["quick"] and "passed" in rows["expert"] and OPUS in rows["expert"]
    assert "route triage chose hard" in shown.stdout
    assert "every node passed or was on a branch its route did not take" in shown.stdout
    data = json.loads(cli("status", str(run_dir), "--json").stdout)
    assert data["status"] == "passed" and data["counts"]["not_taken"] == 1
    assert data["nodes"]["triage"]["route"] == "hard"
    assert "quick" not in [f["name"] for f in data["features"]]  # not work left to do
    output = cli("output", str(run_dir), "quick")
    assert output.returncode == 2 and "it is not_taken" in output.stderr
    steer = cli("steer", str(run_dir), "quick", "faster")
    assert steer.returncode == 2 and "already not_taken" in steer.stderr


def test_show_draws_the_route_with_one_labelled_edge_per_branch(
    cli: Callable[..., CliResult],
) -> None:
    shown = cli("show", "examples/routing.py", cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    assert 'triage{"triage<br/>route: easy | hard"}' in shown.stdout
    assert "triage -->|easy| quick" in shown.stdout and "triage -->|hard| expert" in shown.stdout
    assert "quick --> reply" in shown.stdout and "expert --> reply" in shown.stdout


# -- resume keeps the choice -----------------------------------------------------------------


def test_resume_keeps_the_recorded_choice_without_asking_the_classifier_again(
    tmp_path: Path,
) -> None:
    counter, classify = counted()
    g = triage_graph(classify)
    model = ScriptedModel()
    first = g.run_sync({"question": HARD}, run_dir=tmp_path / "run", client=model)
    assert first.ok and counter.calls == 1
    again = g.run_sync(run_dir=tmp_path / "run", client=model)
    assert again.ok and again.executed == ()
    assert counter.calls == 1 and len(model.requests) == 1  # expert's one call, in run 1
    assert again.statuses["quick"] == "not_taken" and again.statuses["expert"] == "passed"


def test_a_role_classifier_is_not_asked_again_on_resume(tmp_path: Path) -> None:
    class Triage(BaseModel):
        route: str
        reason: str

    triager = Role("triager", "Sort.", model="haiku", output=Triage)
    g = triage_graph(triager, task="Question: {question}")
    model = ScriptedModel({"triage.classify": ['{"route": "Hard.", "reason": "asks why"}']})
    assert g.run_sync({"question": HARD}, run_dir=tmp_path / "run", client=model).ok
    assert g.run_sync(run_dir=tmp_path / "run", client=model).ok
    asked = [r for r in model.requests if r.node == "triage.classify"]
    assert len(asked) == 1 and "one of these labels: easy, hard" in json.dumps(asked[0].messages)
    assert ledger(tmp_path / "run")["nodes"]["triage"]["route"] == "hard"


def test_a_changed_classifier_is_asked_again_and_its_new_branch_runs(tmp_path: Path) -> None:
    async def says_easy(ctx: Context) -> str:
        return "easy"

    model = ScriptedModel()
    first = triage_graph(_hard).run_sync({"question": EASY}, run_dir=tmp_path / "run",
                                              client=model)  # fmt: skip
    assert first.statuses["expert"] == "passed" and first.statuses["quick"] == "not_taken"
    again = triage_graph(says_easy).run_sync(run_dir=tmp_path / "run", client=model)
    assert again.ok and again["triage"] == {"route": "easy"}
    assert again.statuses["quick"] == "passed" and again.statuses["expert"] == "not_taken"
    assert "expert" not in again.outputs and again["reply"] == ["quick", "triage"]


def test_an_interrupted_run_resumes_on_the_chosen_branch_without_asking_again(
    tmp_path: Path,
) -> None:
    counter, classify = counted()
    started = asyncio.Event()
    release = {"now": False}
    g = Graph("stopped", inputs=["question"])
    g.route("triage", classify, {"easy": "quick", "hard": "expert"})

    async def quick(ctx: Context) -> str:
        return "quick"

    async def expert(ctx: Context) -> str:
        if not release["now"]:
            started.set()
            await asyncio.sleep(60)  # stopped here
        return "expert"

    g.node("quick", quick)
    g.node("expert", expert)

    async def stop_midway() -> None:
        run = g.start({"question": HARD}, run_dir=tmp_path / "run")
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(stop_midway())
    doc = Ledger.read(tmp_path / "run")
    assert doc.nodes["expert"].status == "interrupted" and doc.nodes["triage"].route == "hard"
    assert doc.nodes["quick"].status == "not_taken"
    release["now"] = True
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and counter.calls == 1
    assert result.executed == ("expert",)
    assert result.statuses["quick"] == "not_taken"


def test_a_routed_node_stopped_after_the_choice_is_not_asked_again(tmp_path: Path) -> None:
    counter, classify = counted()
    g = Graph("answer", inputs=["question"])
    solver = Role("solver", "Answer.")
    g.route_model("answer", solver, "Answer: {question}", classifier=classify,
                  models={"easy": "haiku", "hard": "opus"})  # fmt: skip
    slow = ScriptedModel({"answer.hard": ["thought it through"]}, delay=30)

    async def stop_midway() -> None:
        run = g.start({"question": HARD}, run_dir=tmp_path / "run", client=slow)
        while not slow.requests:
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(stop_midway())
    doc = Ledger.read(tmp_path / "run")
    assert doc.nodes["answer.classify"].status == "passed"
    assert doc.nodes["answer.easy"].status == "not_taken"
    fast = ScriptedModel({"answer.hard": ["thought it through"]})
    result = g.run_sync(run_dir=tmp_path / "run", client=fast)
    assert result.ok and result["answer"] == "thought it through"
    assert counter.calls == 1 and [r.model for r in fast.requests] == [OPUS]
    nodes = ledger(tmp_path / "run")["nodes"]
    assert nodes["answer"]["route"] == "hard" and nodes["answer.hard"]["model"] == OPUS


KILLED_GRAPH = """
import asyncio, os
from pathlib import Path
from flowgraph import Graph

HERE = Path(os.environ["ROUTE_DIR"])

async def classify(ctx):
    with (HERE / "asked").open("a") as f:
        f.write("asked\\n")
    return "hard"

async def quick(ctx):
    return "quick"

async def expert(ctx):
    if not (HERE / "started").exists():
        (HERE / "started").write_text("x")
        await asyncio.sleep(60)  # killed here, the first time
    return "expert"

graph = Graph("killed")
graph.route("triage", classify, {"easy": "quick", "hard": "expert"})
graph.node("quick", quick)
graph.node("expert", expert)
"""


@pytest.mark.slow
def test_a_killed_run_resumes_on_the_recorded_branch(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    (tmp_path / "graph.py").write_text(KILLED_GRAPH)
    env = {**os.environ, "ROUTE_DIR": str(tmp_path)}
    env.pop("ANTHROPIC_API_KEY", None)
    run = [*flowgraph_exe, "run", "graph.py", "--run-dir", "run"]
    child = subprocess.Popen(run, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert child.poll() is None and (tmp_path / "started").exists()
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    resumed = subprocess.run([*flowgraph_exe, "resume", "run"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "asked").read_text() == "asked\n"  # asked once, in the killed run
    nodes = ledger(tmp_path / "run")["nodes"]
    assert nodes["expert"]["output"] == "expert" and nodes["expert"]["attempts"] == 2
    assert nodes["quick"]["status"] == "not_taken" and nodes["triage"]["attempts"] == 1


# -- a routed model ----------------------------------------------------------------------------


def test_route_model_runs_the_chosen_model_and_records_the_others_not_taken(
    tmp_path: Path,
) -> None:
    counter, classify = counted()
    g = Graph("answer", inputs=["question"])
    g.route_model("answer", Role("solver", "Answer."), "Answer: {question}",
                  classifier=classify, models={"easy": "haiku", "hard": "opus"})  # fmt: skip
    g.node("shout", Role("shout", "Shout it.", model="haiku"), "Shout: {answer}", after=["answer"])
    model = ScriptedModel({"answer.easy": ["use the reset link"]})
    result = g.run_sync({"question": EASY}, run_dir=tmp_path / "run", client=model)
    assert result.ok and result["answer"] == "use the reset link"
    assert [(r.node, r.model) for r in model.requests] == [("answer.easy", HAIKU), ("shout", HAIKU)]
    nodes = ledger(tmp_path / "run")["nodes"]
    assert nodes["answer.easy"]["status"] == "passed" and nodes["answer.easy"]["model"] == HAIKU
    assert nodes["answer.hard"]["status"] == "not_taken" and nodes["answer.hard"]["parent"]
    assert nodes["answer"]["route"] == "easy" and counter.calls == 1
    assert "answer<br/>solver, routed: easy → claude-haiku-5-5" in g.render()


# -- the rules below a route -------------------------------------------------------------------


def test_below_a_route_nodes_without_a_taken_dependency_are_not_taken(tmp_path: Path) -> None:
    g = Graph("rules")

    g.route("triage", _step, {"easy": [], "hard": ["deep", "checked"]})
    g.node("docs", _done)
    for name, after in [("deep", []), ("deeper", ["deep"]), ("deepest", ["deeper"]),
                        ("checked", ["docs"]), ("mixed", ["deeper", "docs"])]:  # fmt: skip
        g.node(name, _done, after=after)
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.status == RunStatus.PASSED
    assert {n for n, s in result.statuses.items() if s == "not_taken"} == {
        "deep", "deeper", "deepest", "checked",  # a branch node stays out despite docs passing
    }  # fmt: skip
    assert result.statuses["mixed"] == "passed"  # one taken dependency: it joins
    assert RunStatus.of_nodes(["passed", "not_taken"]) == RunStatus.PASSED
    assert NodeStatus.NOT_TAKEN.is_final and not NodeStatus.NOT_TAKEN.is_ok
    assert not NodeStatus.NOT_TAKEN.is_paused


def test_a_route_inside_a_subgraph_routes_its_own_nodes(tmp_path: Path) -> None:
    team = Graph("team")
    team.route("triage", _hard, {"easy": "quick", "hard": "deep"})
    team.node("quick", _done)
    team.node("deep", _done)
    g = Graph("outer")
    g.node("team", team)
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok
    assert result.statuses["team.quick"] == "not_taken"
    assert result.statuses["team.deep"] == "passed"
    assert "team__triage -->|hard| team__deep" in g.render()


def test_a_subgraph_as_a_branch_is_not_taken_as_a_whole(tmp_path: Path) -> None:
    team = Graph("team")
    team.node("plan", _done)
    team.node("build", _done, after=["plan"])
    g = Graph("outer")
    g.route("triage", _step, {"easy": "quick", "hard": "team"})
    g.node("quick", _done)
    g.node("team", team)
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result.statuses["quick"] == "passed"
    assert {n: s for n, s in result.statuses.items() if n.startswith("team")} == {
        "team.plan": "not_taken", "team.build": "not_taken", "team": "not_taken",
    }  # fmt: skip
    assert "triage -->|hard| team__plan" in g.render()


def test_a_label_that_is_not_a_branch_fails_the_route_naming_the_labels(tmp_path: Path) -> None:
    async def unsure(ctx: Context) -> str:
        return "medium"

    g = triage_graph(unsure)
    result = g.run_sync({"question": EASY}, run_dir=tmp_path / "run", client=ScriptedModel())
    assert result.status == "failed"
    assert result.errors["triage"] == (
        "route 'triage': the classifier chose 'medium', which is not a branch; branches are: "
        "easy, hard; make it answer with one of them"
    )
    assert result.statuses["quick"] == result.statuses["expert"] == "skipped"


# -- refused before running --------------------------------------------------------------------


async def _step(ctx: Context) -> str:
    return "easy"


class _NoRoute(BaseModel):
    label: str


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda g: g.route("r", _step, {"easy": "a"}), "give at least two branches"),
        (lambda g: g.route("r", _step, {"easy": "a", "not ok": "a"}), "label 'not ok' is not"),
        (lambda g: g.route("r", _step, {"easy": "a", "hard": "a"}, task="x"),
         "a function step takes no task"),
        (lambda g: g.route("r", Role("t", "T.", model="haiku"), {"easy": "a", "hard": "a"}),
         "classifier role 't' needs a task"),
        (lambda g: g.route("r", Role("t", "T.", model="haiku", output=_NoRoute),
                           {"easy": "a", "hard": "a"}, task="x"), "has no 'route' field"),
        (lambda g: g.route_model("r", Role("s", "S."), "x", classifier=_step,
                                 models={"easy": "hiaku", "hard": "opus"}), "hiaku"),
    ],
)  # fmt: skip
def test_bad_routes_are_refused_when_declared(build: Any, message: str) -> None:
    g = Graph("bad")
    with pytest.raises(GraphError, match=message):
        build(g)


def test_a_branch_to_a_node_that_does_not_exist_is_refused_before_running(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    g = Graph("bad")
    g.route("triage", _step, {"easy": "quick", "hard": "exprt"})
    g.node("quick", _step)
    g.node("expert", _step)
    with pytest.raises(GraphError) as caught:
        g.validate()
    assert str(caught.value) == (
        "route 'triage' sends 'hard' to 'exprt', which does not exist; nodes are: "
        "triage, quick, expert"
    )
    graph_file = tmp_path / "bad_route.py"
    graph_file.write_text(
        "from flowgraph import Graph\n"
        "async def pick(ctx):\n    return 'easy'\n"
        "graph = Graph('bad')\n"
        "graph.route('triage', pick, {'easy': 'quick', 'hard': 'exprt'})\n"
        "graph.node('quick', pick)\n"
    )
    run_dir = tmp_path / "run"
    ran = cli("run", str(graph_file), "--run-dir", str(run_dir))
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert ran.stderr.startswith("error: ") and ran.stderr.count("\n") == 1
    assert "'exprt', which does not exist" in ran.stderr
    assert not run_dir.exists()


def test_a_join_whose_task_names_a_branch_node_is_refused() -> None:
    g = triage_graph(_step)
    g.node("polish", Role("polish", "Polish."), "Polish: {quick}", after=["quick", "expert"])
    with pytest.raises(GraphError) as caught:
        g.validate()
    assert str(caught.value).startswith(
        "node 'polish' joins the branches of route 'triage', but its task uses {quick}, which "
        "has no output when 'triage' chooses 'hard'"
    )
    inside = triage_graph(_step)  # inside one branch, naming its own node is fine
    inside.node("review", Role("review", "Review."), "Review: {expert}", after=["expert"])
    inside.validate()


# -- the ledger and the eval -------------------------------------------------------------------


def test_a_ledger_with_not_taken_reads_back_and_an_old_one_still_does(tmp_path: Path) -> None:
    g = triage_graph(counted()[1])
    g.run_sync({"question": EASY}, run_dir=tmp_path / "run", client=ScriptedModel())
    doc = Ledger.read(tmp_path / "run")  # the journal replayed over the snapshot
    assert doc.nodes["expert"].status is NodeStatus.NOT_TAKEN and doc.nodes["triage"].route
    old = ledger(tmp_path / "run")
    for record in old["nodes"].values():
        record.pop("route")  # a ledger written before routing existed
        if record["status"] == "not_taken":
            record["status"] = "pending"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "ledger.json").write_text(json.dumps(old))
    (tmp_path / "old" / "events.jsonl").write_bytes(
        (tmp_path / "run" / "events.jsonl").read_bytes()[: old["journal"]["offset"]]
    )
    assert Ledger.read(tmp_path / "old").nodes["triage"].route is None


def _example_suite() -> Suite:
    path = ROOT / "examples" / "eval_advisor.py"
    spec = importlib.util.spec_from_file_location("routing_eval_suite", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    suite: Suite = module.suite
    return suite


def test_eval_compares_a_routed_configuration_with_the_strong_model(tmp_path: Path) -> None:
    suite = _example_suite()
    assert [c.name for c in suite.configs][-1] == "routed"
    strong, routed = Config("strong solo", "opus"), suite.configs[-1]
    small = Suite(suite.name, suite.graph, suite.tasks[:4], [strong, routed], suite.client)
    rows = {r.config: r for r in report(small, asyncio.run(run_suite(small, tmp_path / "out")))}
    assert rows["routed"].completion_rate == rows["strong solo"].completion_rate == 1.0
    assert rows["routed"].cost_per_task < rows["strong solo"].cost_per_task
    served = {
        name: record.model
        for run in (tmp_path / "out" / "routed").iterdir()
        for name, record in Ledger.read(run).nodes.items()
        if name.startswith("solve.") and record.status == "passed"
    }
    assert set(served.values()) == {HAIKU, OPUS}  # the classifier on haiku; hard ones on opus
