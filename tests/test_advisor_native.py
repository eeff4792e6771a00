"""Native advisor consults through the real SDK against the emulator: round trips over several
turns, redacted results sent back byte-identical, the per-node cap across requests, advisor
errors, and auto mode switching to the emulated advisor when the endpoint refuses the tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Graph, Ledger, Role, tool
from flowgraph.agent.consults import Advisor
from flowgraph.cli.output import transcript_of
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing.emulator import Emulator, Reply

HAIKU = "claude-haiku-5-5"
OPUS = "claude-opus-5-5"


@tool
def run_tests() -> str:
    """Run the tests."""
    return "2 failed"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def consult_then(tool: str, text: str = "asking", *, redacted: bool = False) -> Reply:
    """A response that consults the advisor, then calls ``tool`` (so the loop goes on and the
    consult blocks travel back in the next request's history)."""
    marked = Reply.consult(text, redacted=redacted).content
    return Reply((*marked, {"type": "tool_use", "name": tool, "input": {}}), "tool_use")


def by_turn(*replies: Any) -> Any:
    """An executor script: reply k to the k-th request of the conversation."""

    def reply(body: dict[str, Any]) -> Any:
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        return replies[min(turn, len(replies) - 1)]

    return reply


def run(emu: Emulator, tmp_path: Path, advisor: Advisor) -> tuple[Any, Any]:
    g = Graph("g", model="haiku")
    g.node("fix", Role("coder", "Fix the bug.", tools=[run_tests], advisor=advisor), "fix it")
    result = g.run_sync(client=AnthropicModel("k", base_url=emu.base_url), run_dir=tmp_path / "r")
    return result, Ledger.read(tmp_path / "r").nodes["fix"]


def test_native_consult_round_trip_over_several_turns(emu: Emulator, tmp_path: Path) -> None:
    emu.script(HAIKU, by_turn(
        Reply.tool_use("run_tests", {}),
        consult_then("run_tests", "Tests fail; asking."),
        Reply.tool_use("run_tests", {}),
        Reply.text("fixed"),
    ))  # fmt: skip
    emu.script(OPUS, ["Check the off-by-one in the loop bound."])
    result, record = run(emu, tmp_path, Advisor(mode="native"))
    assert result.ok, result.errors
    requests = [r for r in emu.requests if r.model == HAIKU]
    assert len(requests) == 4 and all(r.status == 200 for r in requests)  # history accepted
    assert requests[0].body["tools"][-1]["type"] == "advisor_20260301"
    assert "advisor-tool-2026-03-01" in requests[0].headers["anthropic-beta"]
    sent_back = requests[2].body["messages"][3]["content"]
    assert [b["type"] for b in sent_back] == [
        "text", "server_tool_use", "advisor_tool_result", "tool_use"
    ]  # fmt: skip
    [consult] = record.consults
    assert consult["mode"] == "native" and consult["advice"].startswith("Check the off-by-one")
    billed = emu.billed[OPUS]
    price = DEFAULT_PRICING.get(OPUS)
    assert price is not None
    advisor_usd = (billed.input_tokens * price.input + billed.output_tokens * price.output) / 1e6
    assert record.spend[f"advisor:{OPUS}"]["cost_usd"] == pytest.approx(advisor_usd, rel=1e-12)
    assert consult["cost_usd"] == pytest.approx(advisor_usd, rel=1e-12)
    executor = record.spend[f"executor:{HAIKU}"]["cost_usd"]
    assert record.cost_usd == pytest.approx(executor + advisor_usd, rel=1e-12)


def test_redacted_advice_goes_back_byte_identical(emu: Emulator, tmp_path: Path) -> None:
    emu.script(HAIKU, by_turn(consult_then("run_tests", redacted=True), Reply.text("done")))
    result, record = run(emu, tmp_path, Advisor(mode="native"))
    assert result.ok
    first, second = (r for r in emu.requests if r.model == HAIKU)
    assert first.status == second.status == 200
    returned = next(
        b for b in second.body["messages"][1]["content"] if b["type"] == "advisor_tool_result"
    )
    assert returned["content"]["type"] == "advisor_redacted_result"
    assert record.consults[0]["advice"] == "[redacted]"
    received = transcript_of(tmp_path / "r", "fix")["messages"][1]["content"]
    original = next(b for b in received if b["type"] == "advisor_tool_result")
    assert json.dumps(returned, sort_keys=True) == json.dumps(original, sort_keys=True)


def test_max_uses_holds_across_requests_natively(emu: Emulator, tmp_path: Path) -> None:
    ask = consult_then("run_tests")
    emu.script(HAIKU, by_turn(ask, ask, ask, ask, ask, Reply.text("done")))
    emu.script(OPUS, ["advice"])
    result, record = run(emu, tmp_path, Advisor(mode="native", max_uses=2))
    assert result.ok
    assert sum(1 for c in record.consults if c["outcome"] == "ok") == 2
    executor_requests = [r for r in emu.requests if r.model == HAIKU]
    offered = [
        next((t["max_uses"] for t in r.body.get("tools", []) if t.get("name") == "advisor"), 0)
        for r in executor_requests
    ]
    assert offered[:3] == [2, 1, 0]  # the uses left, then the tool is dropped
    assert "anthropic-beta" not in executor_requests[2].headers or (
        "advisor" not in executor_requests[2].headers["anthropic-beta"]
    )
    assert emu.calls(OPUS) == 2


def test_advisor_overloaded_lets_the_executor_continue(emu: Emulator, tmp_path: Path) -> None:
    emu.script(HAIKU, by_turn(consult_then("run_tests"), Reply.text("done")))
    emu.fault("overloaded", model=OPUS, call=0)
    result, record = run(emu, tmp_path, Advisor(mode="native"))
    assert result.ok and result["fix"] == "done"
    assert record.consults[0]["outcome"] == "error"
    assert record.consults[0]["error"] == "overloaded"


def test_auto_switches_to_emulated_when_the_endpoint_refuses_the_tool(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.advisor_tool = False
    emu.script(HAIKU, by_turn(Reply.tool_use("advisor", {"question": "which fix?"}),
                              Reply.text("done")))  # fmt: skip
    emu.script(OPUS, ["Fix the bound."])
    result, record = run(emu, tmp_path, Advisor(mode="auto"))
    assert result.ok, result.errors
    statuses = [r.status for r in emu.requests if r.model == HAIKU]
    assert statuses[0] == 400  # the native attempt, refused once
    assert all(s == 200 for s in statuses[1:])
    later = [r for r in emu.requests if r.model == HAIKU][1:]
    assert all(t.get("type") != "advisor_20260301" for r in later for t in r.body["tools"])
    [consult] = record.consults
    assert consult["mode"] == "emulated" and consult["advice"] == "Fix the bound."
