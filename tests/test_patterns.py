"""Patterns through the public API and the CLI, as a user writes them: map, race, bounded review
loop, approval gate, steering, subgraphs, and how `flowgraph show` draws each of them."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flowgraph import Context, Graph, GraphError, Ledger, ModelRequest, NodeError, Role
from flowgraph.testing import ScriptedModel
from flowgraph.testing.scripted import text, tool_call

# -- helpers --------------------------------------------------------------------------------


def first_text(request: ModelRequest) -> str:
    """The text of a request's first user message (block lists joined)."""
    return message_text(request.messages[0])


def message_text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))


def all_text(request: ModelRequest) -> str:
    return "\n".join(message_text(m) for m in request.messages)


def requests_of(model: ScriptedModel, node: str) -> list[ModelRequest]:
    return [r for r in model.requests if r.node == node]


def cli(exe: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


class Verdict(BaseModel):
    approved: bool
    comments: str = ""


def role(name: str, **kw: Any) -> Role:
    return Role(name, f"You are the {name}.", cache=False, **kw)


# -- map ------------------------------------------------------------------------------------


def test_map_over_an_upstream_list_keeps_input_order_and_records_each_item(
    tmp_path: Path,
) -> None:
    async def listing(ctx: Context) -> list[int]:
        return [5, 1, 3, 0]

    async def square(ctx: Context) -> int:
        await asyncio.sleep(ctx.item * 0.01)  # later items finish first
        return int(ctx.item) ** 2

    g = Graph("mapper")
    g.node("listing", listing)
    g.map("squares", square, over="listing")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["squares"] == [25, 1, 9, 0]
    doc = Ledger.read(tmp_path / "run")
    for i, value in enumerate([25, 1, 9, 0]):
        record = doc.nodes[f"squares[{i}]"]
        assert record.parent == "squares"
        assert record.status == "passed"
        assert record.output == value
    assert doc.nodes["squares"].parent is None


def test_map_over_an_input_field(tmp_path: Path) -> None:
    async def shout(ctx: Context) -> str:
        return str(ctx.item).upper()

    g = Graph("mapper", inputs=["words"])
    g.map("loud", shout, over="words")
    result = g.run_sync({"words": ["a", "bb", "ccc"]}, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["loud"] == ["A", "BB", "CCC"]
    doc = Ledger.read(tmp_path / "run")
    assert [doc.nodes[f"loud[{i}]"].output for i in range(3)] == ["A", "BB", "CCC"]


def test_map_concurrency_cap_is_observed_exactly() -> None:
    running = {"now": 0, "peak": 0}

    async def work(ctx: Context) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.02)
        running["now"] -= 1
        return int(ctx.item)

    g = Graph("capped", inputs=["items"])
    g.map("m", work, over="items", concurrency=3)
    result = g.run_sync({"items": list(range(12))})
    assert result.ok, result.errors
    assert result["m"] == list(range(12))
    assert running["peak"] == 3


def _flaky_map(executions: list[int], broken: set[int], on_error: Any = "fail") -> Graph:
    async def work(ctx: Context) -> str:
        executions.append(int(ctx.item))
        if ctx.item in broken:
            raise RuntimeError(f"item {ctx.item} is broken")
        return f"ok {ctx.item}"

    g = Graph("flaky_map", inputs=["items"])
    g.map("m", work, over="items", on_error=on_error)
    return g


def test_map_fail_keeps_the_others_names_the_item_and_resume_runs_only_it(
    tmp_path: Path,
) -> None:
    executions: list[int] = []
    broken = {2}
    run_dir = tmp_path / "run"
    first = _flaky_map(executions, broken).run_sync({"items": [0, 1, 2, 3, 4]}, run_dir=run_dir)
    assert first.status == "failed"
    assert first.statuses["m"] == "failed"
    assert "[2]" in first.errors["m"] and "item 2 is broken" in first.errors["m"]
    doc = Ledger.read(run_dir)
    assert {i: doc.nodes[f"m[{i}]"].status for i in range(5)} == {
        0: "passed", 1: "passed", 2: "failed", 3: "passed", 4: "passed",
    }  # fmt: skip
    assert doc.nodes["m"].failed_items == [2]
    assert sorted(executions) == [0, 1, 2, 3, 4]

    broken.clear()  # the cause is fixed; resume
    executions.clear()
    second = _flaky_map(executions, broken).run_sync(run_dir=run_dir)
    assert second.ok, second.errors
    assert executions == [2]
    assert second["m"] == [f"ok {i}" for i in range(5)]


def test_map_continue_passes_with_none_for_the_failed_item() -> None:
    executions: list[int] = []
    result = _flaky_map(executions, {1}, "continue").run_sync({"items": [0, 1, 2]})
    assert result.ok, result.errors
    assert result["m"] == ["ok 0", None, "ok 2"]


def test_map_with_a_role_fills_item_and_index_in_its_task() -> None:
    model = ScriptedModel(default=lambda r: f"summary of {r.node}")
    g = Graph("docs", inputs=["files"])
    g.map("summaries", role("writer"), "Summarize file {item} (number {index})", over="files")
    result = g.run_sync({"files": ["a.py", "b.py"]}, client=model)
    assert result.ok, result.errors
    assert result["summaries"] == ["summary of summaries[0]", "summary of summaries[1]"]
    texts = {r.node: first_text(r) for r in model.requests}
    assert "Summarize file a.py (number 0)" in texts["summaries[0]"]
    assert "Summarize file b.py (number 1)" in texts["summaries[1]"]


def test_map_over_something_not_a_list_is_a_clear_node_error() -> None:
    async def not_a_list(ctx: Context) -> str:
        return "a string"

    async def work(ctx: Context) -> Any:
        return ctx.item

    g = Graph("bad_map")
    g.node("src", not_a_list)
    g.map("m", work, over="src")
    result = g.run_sync()
    assert result.status == "failed"
    assert "'src' gave str, not a list" in result.errors["m"]
    with pytest.raises(NodeError, match="not a list"):
        result.raise_for_status()


@pytest.mark.slow
def test_map_of_ten_thousand_items_with_a_durable_ledger_completes(tmp_path: Path) -> None:
    async def double(ctx: Context) -> int:
        return int(ctx.item) * 2

    n = 10_000
    g = Graph("big", inputs=["items"])
    g.map("m", double, over="items")
    result = g.run_sync({"items": list(range(n))}, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["m"] == [i * 2 for i in range(n)]
    doc = Ledger.read(tmp_path / "run")
    items = {k: r for k, r in doc.nodes.items() if r.parent == "m"}
    assert len(items) == n
    assert all(r.status == "passed" for r in items.values())
    assert doc.nodes["m[9999]"].output == 19_998


# -- race -----------------------------------------------------------------------------------


def _race_graph(wrote: dict[str, Path], check: Any = None, judge: Role | None = None) -> Graph:
    async def write_file(name: str, body: str, ctx: Context) -> str:
        """Write a file in the workspace."""
        ctx.workspace.mkdir(parents=True, exist_ok=True)
        (ctx.workspace / name).write_text(body)
        wrote[name] = ctx.workspace
        return "written"

    async def nap(seconds: float) -> str:
        """Wait."""
        await asyncio.sleep(seconds)
        return "rested"

    tools = [write_file, nap]
    g = Graph("racing")
    g.race(
        "race",
        [role("alpha", tools=tools), role("beta", tools=tools), role("gamma", tools=tools)],
        "Write the solution",
        check=check,
        judge=judge,
    )
    return g


def _race_script(slow_gamma: bool) -> dict[str, Any]:
    return {
        # alpha: fast, but fails the check
        "race.alpha": [tool_call("write_file", name="alpha.txt", body="a"), "alpha: bad"],
        # beta: a little slower, passes the check
        "race.beta": [
            tool_call("nap", seconds=0.1),
            tool_call("write_file", name="beta.txt", body="b"),
            "beta: good",
        ],
        # gamma: writes, then takes a long time
        "race.gamma": [
            tool_call("write_file", name="gamma.txt", body="g"),
            tool_call("nap", seconds=5 if slow_gamma else 0.2),
            "gamma: good too",
        ],
    }


def test_race_check_picks_the_first_passing_contender_and_cancels_the_rest(
    tmp_path: Path,
) -> None:
    async def check(output: Any, ctx: Context) -> bool:
        return "good" in str(output)

    wrote: dict[str, Path] = {}
    model = ScriptedModel(_race_script(slow_gamma=True))
    result = _race_graph(wrote, check).run_sync(client=model, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["race"] == {"winner": "beta", "output": "beta: good"}
    doc = Ledger.read(tmp_path / "run")
    records = {n: doc.nodes[f"race.{n}"] for n in ("alpha", "beta", "gamma")}
    assert all(r.parent == "race" for r in records.values())
    assert records["alpha"].status == "passed" and records["alpha"].check_passed is False
    assert records["beta"].status == "passed" and records["beta"].check_passed is True
    assert records["gamma"].status in ("interrupted", "passed")
    assert records["gamma"].status == "interrupted"  # it was napping 5 s: it was cancelled
    assert doc.nodes["race"].winner == "beta"
    # each contender worked in its own copy of the workspace; only the winner's files came back
    workspace = tmp_path / "run" / "workspace"
    assert len(set(wrote.values())) == 3
    assert all(place != workspace for place in wrote.values())
    assert (workspace / "beta.txt").read_text() == "b"
    assert not (workspace / "alpha.txt").exists()
    assert not (workspace / "gamma.txt").exists()


def test_race_judge_chooses_when_there_is_no_check_and_every_result_and_cost_is_kept(
    tmp_path: Path,
) -> None:
    script = _race_script(slow_gamma=False)
    script["race.judge"] = ["gamma"]
    model = ScriptedModel(script)
    wrote: dict[str, Path] = {}
    g = _race_graph(wrote, judge=role("judge"))
    result = g.run_sync(client=model, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["race"] == {"winner": "gamma", "output": "gamma: good too"}
    judged = first_text(requests_of(model, "race.judge")[0])
    assert "alpha: bad" in judged and "beta: good" in judged and "gamma: good too" in judged
    doc = Ledger.read(tmp_path / "run")
    outputs = {"alpha": "alpha: bad", "beta": "beta: good", "gamma": "gamma: good too"}
    for name, output in outputs.items():
        record = doc.nodes[f"race.{name}"]
        assert record.status == "passed"
        assert record.output == output
        assert record.usage.get("input_tokens", 0) > 0
        assert record.cost_usd is not None and record.cost_usd > 0
    assert doc.nodes["race.judge"].parent == "race"
    workspace = tmp_path / "run" / "workspace"
    assert (workspace / "gamma.txt").exists() and not (workspace / "beta.txt").exists()


def test_race_definition_errors() -> None:
    async def check(output: Any, ctx: Context) -> bool:
        return True

    g = Graph("g")
    with pytest.raises(GraphError, match="at least two contenders"):
        g.race("r", [role("solo")], "do it", check=check)
    with pytest.raises(GraphError, match="check function or a judge"):
        g.race("r", [role("a"), role("b")], "do it")


# -- review loop ----------------------------------------------------------------------------


def _review_graph(max_rounds: int = 3, on_give_up: Any = "fail") -> Graph:
    g = Graph("reviewed")
    g.node("impl", role("coder"), "Implement the parser")
    g.review_loop("loop", role("reviewer", output=Verdict), work="impl",
                  max_rounds=max_rounds, on_give_up=on_give_up)  # fmt: skip
    return g


REJECT = '{"approved": false, "comments": "add error handling"}'
APPROVE = '{"approved": true, "comments": "looks good"}'


def test_review_loop_changes_requested_then_approved_in_round_two(tmp_path: Path) -> None:
    model = ScriptedModel(
        {
            "impl": ["parser v1"],
            "loop.review1": [REJECT],
            "loop.revise2": ["parser v2 with error handling"],
            "loop.review2": [APPROVE],
        },
        default=None,
    )
    result = _review_graph().run_sync(client=model, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    out = result["loop"]
    assert out["approved"] is True
    assert out["rounds"] == 2
    assert out["work"] == "parser v2 with error handling"
    revise = first_text(requests_of(model, "loop.revise2")[0])
    assert "add error handling" in revise  # the worker saw the review
    assert "parser v1" in revise  # and its previous work
    assert "Implement the parser" in revise
    assert "parser v2 with error handling" in first_text(requests_of(model, "loop.review2")[0])
    doc = Ledger.read(tmp_path / "run")
    for name in ("loop.review1", "loop.revise2", "loop.review2"):
        assert doc.nodes[name].parent == "loop"
        assert doc.nodes[name].status == "passed"
    assert doc.nodes["loop.review1"].output == {"approved": False, "comments": "add error handling"}
    assert "loop.revise1" not in doc.nodes and "loop.review3" not in doc.nodes


def test_review_loop_gives_up_after_max_rounds_and_fails() -> None:
    model = ScriptedModel({"impl": ["v1"], "loop.review1": [REJECT], "loop.review2": [REJECT]})
    result = _review_graph(max_rounds=2).run_sync(client=model)
    assert result.status == "failed"
    assert "not approved after 2 rounds" in result.errors["loop"]
    reviewed = [r.node for r in model.requests if r.node.startswith("loop.")]
    assert reviewed == ["loop.review1", "loop.revise2", "loop.review2"]


def test_review_loop_gives_up_and_passes_with_approved_false() -> None:
    model = ScriptedModel({"impl": ["v1"], "loop.revise2": ["v2"], "loop.review1": [REJECT],
                           "loop.review2": [REJECT]})  # fmt: skip
    result = _review_graph(max_rounds=2, on_give_up="pass").run_sync(client=model)
    assert result.ok, result.errors
    assert result["loop"]["approved"] is False
    assert result["loop"]["rounds"] == 2
    assert result["loop"]["work"] == "v2"


def test_review_loop_work_must_name_a_role_node() -> None:
    async def build(ctx: Context) -> str:
        return "built"

    g = Graph("g")
    g.node("build", build)
    g.review_loop("loop", role("reviewer", output=Verdict), work="build")
    with pytest.raises(GraphError, match="not a role"):
        g.validate()


# -- approval gate --------------------------------------------------------------------------


def _gated(seen: dict[str, Any]) -> Graph:
    async def prep(ctx: Context) -> str:
        return "prepared"

    async def docs(ctx: Context) -> str:
        return "documented"

    async def notify(ctx: Context) -> str:
        seen["note"] = ctx.outputs["gate"]["note"]
        return "notified"

    g = Graph("gated")
    g.node("prep", prep)
    g.gate("gate", "ship to production?", after=["prep"])
    g.node("deploy", role("ops"), "Deploy. The approver said: {gate.note}", after=["gate"])
    g.node("notify", notify, after=["deploy"])
    g.node("docs", docs)
    return g


def test_gate_waits_then_cli_approve_with_a_note_and_resume_runs_dependents(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    run_dir = tmp_path / "run"
    model = ScriptedModel({"deploy": ["deployed"]})
    seen: dict[str, Any] = {}
    first = _gated(seen).run_sync(client=model, run_dir=run_dir)
    assert first.status == "waiting_approval"
    assert first.statuses == {
        "prep": "passed", "gate": "waiting_approval", "deploy": "pending",
        "notify": "pending", "docs": "passed",
    }  # fmt: skip
    assert model.requests == []
    doc = Ledger.read(run_dir)
    assert doc.status == "waiting_approval"
    assert f"flowgraph approve {run_dir} gate" in doc.next_step

    approved = cli(flowgraph_exe, "approve", str(run_dir), "gate", "--note", "ship it friday",
                   cwd=tmp_path)  # fmt: skip
    assert approved.returncode == 0, approved.stderr

    second = _gated(seen).run_sync(client=model, run_dir=run_dir)
    assert second.ok, second.errors
    assert set(second.executed) == {"gate", "deploy", "notify"}
    assert second["gate"] == {"approved": True, "note": "ship it friday"}
    assert "The approver said: ship it friday" in first_text(requests_of(model, "deploy")[0])
    assert seen["note"] == "ship it friday"
    assert Ledger.read(run_dir).nodes["gate"].decision["kind"] == "approve"  # type: ignore[index]


def test_gate_reject_ends_the_dependents_with_the_note_recorded(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    run_dir = tmp_path / "run"
    model = ScriptedModel()
    assert _gated({}).run_sync(client=model, run_dir=run_dir).status == "waiting_approval"
    rejected = cli(flowgraph_exe, "reject", str(run_dir), "gate", "--note", "not this week",
                   cwd=tmp_path)  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr
    result = _gated({}).run_sync(client=model, run_dir=run_dir)
    assert result.status == "failed"
    assert result.statuses["gate"] == "failed"
    assert "not this week" in result.errors["gate"]
    assert result.statuses["deploy"] == "skipped"
    assert result.statuses["notify"] == "skipped"
    assert result.statuses["docs"] == "passed"
    assert model.requests == []
    doc = Ledger.read(run_dir)
    assert "not this week" in (doc.nodes["gate"].error or "")


def test_approving_a_node_that_is_not_a_gate_is_a_one_line_cli_error(
    tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    run_dir = tmp_path / "run"
    _gated({}).run_sync(client=ScriptedModel(), run_dir=run_dir)
    before = (run_dir / "ledger.json").read_bytes()
    out = cli(flowgraph_exe, "approve", str(run_dir), "prep", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ")
    assert len(out.stderr.strip().splitlines()) == 1
    assert "not an approval gate" in out.stderr
    assert (run_dir / "ledger.json").read_bytes() == before
    assert not (run_dir / "inbox.jsonl").exists()


# -- steering -------------------------------------------------------------------------------

INSTRUCTION = "New instruction from a person: "


def latest_instruction(request: ModelRequest) -> str:
    found = ""
    for message in request.messages:
        if isinstance(message["content"], list):
            for block in message["content"]:
                body = str(block.get("text", "")) if isinstance(block, dict) else ""
                if body.startswith(INSTRUCTION):
                    found = body[len(INSTRUCTION) :]
    return found


def steerable(request: ModelRequest) -> Any:
    """Three turns (two tool calls, then an answer that quotes the latest instruction)."""
    turn = sum(1 for m in request.messages if m["role"] == "assistant")
    if turn < 2:
        return tool_call("look")
    return text(f"final; instruction: {latest_instruction(request) or 'none'}")


def _steer_graph(model: ScriptedModel) -> Graph:
    async def look() -> str:
        """Look around."""
        return "nothing new"

    g = Graph("steered", client=model)
    g.node("writer", role("writer", tools=[look]), "Write the intro")
    g.node("editor", role("editor", tools=[look]), "Edit {writer}", after=["writer"])
    return g


async def _wait_for(model: ScriptedModel, node: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not requests_of(model, node):
        assert asyncio.get_running_loop().time() < deadline, f"{node} never asked the model"
        await asyncio.sleep(0.01)


def test_steering_reaches_a_running_node_at_its_next_turn_and_a_pending_one_at_its_first(
    tmp_path: Path,
) -> None:
    model = ScriptedModel({"writer": steerable, "editor": steerable}, delay=0.2)
    run_dir = tmp_path / "run"

    async def drive() -> Any:
        run = _steer_graph(model).start(run_dir=run_dir)
        await _wait_for(model, "writer")  # the writer's first turn is in flight
        run.steer("writer", "use British spelling")
        run.steer("editor", "keep it short")  # not started yet
        return await run

    result = asyncio.run(drive())
    assert result.ok, result.errors
    assert result["writer"] == "final; instruction: use British spelling"
    assert result["editor"] == "final; instruction: keep it short"
    writer = requests_of(model, "writer")
    assert INSTRUCTION not in all_text(writer[0])
    assert "use British spelling" in all_text(writer[1])  # delivered at turn 2, not restarted
    assert len(writer) == 3
    editor = requests_of(model, "editor")
    assert "keep it short" in first_text(editor[0])  # at its first turn
    doc = Ledger.read(run_dir)
    writer_steering = doc.nodes["writer"].steering
    assert [(s["text"], s["turn"]) for s in writer_steering] == [("use British spelling", 2)]
    editor_steering = doc.nodes["editor"].steering
    assert [(s["text"], s["turn"]) for s in editor_steering] == [("keep it short", 1)]


def test_steering_a_run_without_a_run_dir_works_in_process() -> None:
    model = ScriptedModel({"writer": steerable, "editor": steerable}, delay=0.1)

    async def drive() -> Any:
        run = _steer_graph(model).start()
        await _wait_for(model, "writer")
        run.steer("writer", "mention the cat")
        return await run

    result = asyncio.run(drive())
    assert result.ok, result.errors
    assert result["writer"] == "final; instruction: mention the cat"


# -- subgraphs ------------------------------------------------------------------------------


def _sub_graphs(polish_task: str = "Polish {draft}") -> Graph:
    sub = Graph("writing", inputs=["topic"])
    sub.node("draft", role("drafter"), "Draft about {topic}")
    sub.node("polish", role("polisher"), polish_task, after=["draft"])
    sub.node("notes", role("noter"), "Notes on {topic}")
    main = Graph("main", inputs=["topic"])
    main.node("prep", role("researcher"), "Research {topic}")
    main.node("sub", sub, after=["prep"])
    main.node("final", role("publisher"), "Publish {sub}", after=["sub"])
    return main


def _sub_model() -> ScriptedModel:
    return ScriptedModel(default=lambda r: f"out of {r.node}")


def test_subgraph_nodes_are_recorded_as_sub_child_and_its_output_gathers_its_last_nodes(
    tmp_path: Path,
) -> None:
    model = _sub_model()
    result = _sub_graphs().run_sync({"topic": "owls"}, client=model, run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["sub"] == {"polish": "out of sub.polish", "notes": "out of sub.notes"}
    doc = Ledger.read(tmp_path / "run")
    for child in ("sub.draft", "sub.polish", "sub.notes"):
        assert doc.nodes[child].status == "passed"
        assert doc.nodes[child].output == f"out of {child}"
    assert "Polish out of sub.draft" in first_text(requests_of(model, "sub.polish")[0])
    assert "Draft about owls" in first_text(requests_of(model, "sub.draft")[0])
    assert "out of sub.polish" in first_text(requests_of(model, "final")[0])
    order = [r.node for r in model.requests]
    assert order.index("prep") < order.index("sub.draft")  # the subgraph waits on its after=


def test_resume_through_a_subgraph_reuses_passed_children_and_edits_rerun_descendants_only(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    model = _sub_model()
    assert _sub_graphs().run_sync({"topic": "owls"}, client=model, run_dir=run_dir).ok
    calls = len(model.requests)
    again = _sub_graphs().run_sync(client=model, run_dir=run_dir)
    assert again.ok and again.executed == ()
    assert len(model.requests) == calls
    edited = _sub_graphs("Polish {draft} carefully").run_sync(client=model, run_dir=run_dir)
    assert edited.ok, edited.errors
    assert set(edited.executed) == {"sub.polish", "sub", "final"}
    assert sorted(r.node for r in model.requests[calls:]) == ["final", "sub.polish"]


def test_subgraph_needing_an_input_the_parent_lacks_is_a_graph_error() -> None:
    sub = Graph("writing", inputs=["topic"])
    sub.node("draft", role("drafter"), "Draft about {topic}")
    main = Graph("main")
    main.node("sub", sub)
    with pytest.raises(GraphError, match="needs input topic"):
        main.validate()


# -- checklist (the multi-process story is in test_patterns_processes.py) ----------------------


def test_checklist_only_the_check_flips_an_item(tmp_path: Path) -> None:
    async def init(ctx: Context) -> list[str]:
        return ["login", "logout", "signup"]

    async def build(ctx: Context) -> str:
        return f"built {ctx.item}"

    async def check(item: str, output: Any, ctx: Context) -> bool | str | None:
        return None if item != "logout" else "logout still broken"

    g = Graph("list")
    g.checklist("features", init, build, check=check)
    run_dir = tmp_path / "run"
    result = g.run_sync(run_dir=run_dir)
    assert result.status == "incomplete"
    doc = Ledger.read(run_dir)
    assert [(f.name, f.passes) for f in doc.features] == [
        ("login", True), ("logout", False), ("signup", True),
    ]  # fmt: skip
    assert "logout" in doc.next_step and "logout still broken" in doc.next_step
    assert doc.nodes["features[logout]"].status == "failed"


# -- flowgraph show -------------------------------------------------------------------------

SHOW_FILE = """
from flowgraph import Context, Graph, Role

async def items(ctx: Context) -> list[int]:
    return [1, 2]

async def per_item(ctx: Context) -> int:
    return ctx.item

async def check(output, ctx: Context) -> bool:
    return True

async def check_item(item, output, ctx: Context):
    return None

coder = Role("coder", "x")
reviewer = Role("reviewer", "x")
sub = Graph("inner")
sub.node("child", coder, "child work")
graph = Graph("patterns")
graph.node("items", items)
graph.map("each", per_item, over="items")
graph.race("contest", [coder, reviewer], "solve", check=check)
graph.node("impl", coder, "implement")
graph.review_loop("loop", reviewer, work="impl", max_rounds=2)
graph.gate("ok", after=["loop"])
graph.node("sub", sub, after=["ok"])
graph.checklist("todo", items, per_item, check=check_item)
"""


def test_show_renders_every_pattern(tmp_path: Path, flowgraph_exe: list[str]) -> None:
    (tmp_path / "patterns.py").write_text(SHOW_FILE)
    out = cli(flowgraph_exe, "show", "patterns.py:graph", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    chart = out.stdout
    lines = chart.splitlines()
    assert lines[0] == "flowchart TD"

    assert any(ln.strip().startswith('each[/"each') for ln in lines), chart  # map
    assert any(ln.strip().startswith('contest{{"contest') for ln in lines), chart  # race
    assert any(ln.strip().startswith('loop(["loop') for ln in lines), chart  # review loop
    assert "loop -. changes requested .-> impl" in chart
    assert any(ln.strip().startswith('ok{"ok') for ln in lines), chart  # gate
    assert any(ln.strip().startswith('todo[("todo') for ln in lines), chart  # checklist
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("subgraph "))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "end")
    assert any("sub__child" in ln for ln in lines[start:end]), chart
    assert "ok --> sub__child" in chart
