"""The role runtime: tool loop, tool errors, structured output, turn limits, isolation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from flowgraph import Context, Graph, Role, tool
from flowgraph.models.seam import ModelRequest
from flowgraph.testing import ScriptedModel, tool_call


class Verdict(BaseModel):
    approved: bool
    notes: str


def test_tool_loop_runs_tools_and_feeds_results_back() -> None:
    calls: list[int] = []

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        calls.append(a + b)
        return a + b

    model = ScriptedModel({"calc": [tool_call("add", a=2, b=3), "the sum is 5"]})
    g = Graph("g")
    g.node("calc", Role("calc", "You add.", tools=[add], cache=False), "add 2 and 3")
    result = g.run_sync(client=model)
    assert result["calc"] == "the sum is 5"
    assert calls == [5]
    second = model.requests[1].messages
    assert second[-1]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": second[-2]["content"][0]["id"],
        "content": "5",
    }
    assert model.requests[0].tools[0]["input_schema"]["required"] == ["a", "b"]


def test_a_failing_tool_goes_back_as_an_error_result_not_a_crash() -> None:
    @tool
    def read(path: str) -> str:
        """Read a file."""
        raise FileNotFoundError(path)

    model = ScriptedModel({"r": [tool_call("read", path="x.txt"), tool_call("nope"), "gave up"]})
    g = Graph("g")
    g.node("r", Role("reader", "You read.", tools=[read]), "read x.txt")
    result = g.run_sync(client=model)
    assert result.ok
    first_result = model.requests[1].messages[-1]["content"][0]
    assert first_result["is_error"] is True
    assert "FileNotFoundError: x.txt" in first_result["content"]
    unknown = model.requests[2].messages[-1]["content"][0]
    assert unknown["is_error"] and "unknown tool 'nope'" in unknown["content"]


def test_invalid_tool_arguments_are_reported_to_the_model() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    model = ScriptedModel({"c": [tool_call("add", a="two", b=3), "ok"]})
    g = Graph("g")
    g.node("c", Role("c", "x", tools=[add]), "go")
    g.run_sync(client=model)
    content = model.requests[1].messages[-1]["content"][0]
    assert content["is_error"] and "invalid arguments for add: a:" in content["content"]


def test_structured_output_is_validated_and_fixed_after_feedback() -> None:
    model = ScriptedModel(
        {"review": ['{"approved": "maybe"}', '```json\n{"approved": true, "notes": "fine"}\n```']}
    )
    g = Graph("g")
    g.node("review", Role("reviewer", "x", output=Verdict), "review it")
    result = g.run_sync(client=model)
    assert result["review"] == {"approved": True, "notes": "fine"}
    feedback = model.requests[1].messages[-1]["content"][0]["text"]
    assert "did not validate" in feedback


def test_structured_output_gives_up_after_output_retries() -> None:
    model = ScriptedModel({"review": ["not json"]})
    g = Graph("g")
    g.node("review", Role("reviewer", "x", output=Verdict, output_retries=1), "review it")
    result = g.run_sync(client=model)
    assert result.statuses["review"] == "failed"
    assert "did not validate against Verdict" in result.errors["review"]
    assert len(model.requests) == 2


def test_max_turns_ends_a_node_that_never_finishes() -> None:
    @tool
    def noop() -> str:
        """Do nothing."""
        return ""

    model = ScriptedModel({"loop": [tool_call("noop")]})
    g = Graph("g")
    g.node("loop", Role("looper", "x", tools=[noop], max_turns=3), "go")
    result = g.run_sync(client=model)
    assert "used all 3 turns" in result.errors["loop"]
    assert len(model.requests) == 3


def test_each_node_has_its_own_conversation_and_gets_only_upstream_outputs() -> None:
    def answer(request: ModelRequest) -> Any:
        return f"answer of {request.node}"

    model = ScriptedModel({"a": answer, "b": answer, "c": answer})
    g = Graph("g")
    g.node("a", Role("r", "x", cache=False), "first")
    g.node("b", Role("r", "x", cache=False), "second")
    g.node("c", Role("r", "x", cache=False), "use {a}", after=["a", "b"])
    g.run_sync(client=model)
    by_node = {r.node: r for r in model.requests}
    assert by_node["a"].messages == [{"role": "user", "content": "first"}]
    c_text = by_node["c"].messages[0]["content"]
    assert c_text.startswith("use answer of a")
    assert "<b>\nanswer of b\n</b>" in c_text


def test_context_parameter_is_injected_and_hidden_from_the_schema(tmp_path) -> None:  # type: ignore[no-untyped-def]
    @tool
    def where(ctx: Context) -> str:
        """Say where."""
        return ctx.node

    assert where.input_schema["properties"] == {}
    model = ScriptedModel({"w": [tool_call("where"), "done"]})
    g = Graph("g")
    g.node("w", Role("r", "x", tools=[where]), "go")
    g.run_sync(client=model, run_dir=tmp_path / "run")
    assert model.requests[1].messages[-1]["content"][0]["content"] == "w"


def test_cache_breakpoints_mark_system_tools_and_the_end_of_the_conversation() -> None:
    @tool
    def look(q: str) -> str:
        """Look."""
        return q

    model = ScriptedModel({"n": [tool_call("look", q="x"), "done"]})
    g = Graph("g")
    g.node("n", Role("r", "be brief", tools=[look]), "go")
    g.run_sync(client=model)
    first, second = model.requests
    marker = {"type": "ephemeral"}
    assert first.system == [{"type": "text", "text": "be brief", "cache_control": marker}]
    assert first.tools[-1]["cache_control"] == marker
    assert first.messages[-1]["content"][-1]["cache_control"] == marker
    # The newest message and where the previous request ended carry breakpoints (with system
    # and tools, 4: the API's limit), so each turn reads what the last one wrote.
    marked = [m for m in second.messages if "cache_control" in str(m)]
    assert marked == [second.messages[0], second.messages[-1]]
    assert second.messages[-1]["content"][-1]["type"] == "tool_result"
