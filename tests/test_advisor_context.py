"""Advisor context control: what an emulated consult shows the advisor, as a conversation grows."""

from __future__ import annotations

from typing import Any

from flowgraph import Graph, GraphError, Role, tool
from flowgraph.agent.consults import ADVISOR_SYSTEM, Advisor
from flowgraph.testing import ScriptedModel, tool_call

TURNS = 40


@tool
def step() -> str:
    """Do the next step."""
    return "step result: " + "x" * 400


def consult_inputs(context: str, **advisor: Any) -> list[int]:
    """Advisor input tokens of consults at turns 10, 20, 30 and 40 of a 40-turn node."""
    turns = [tool_call("advisor", question=f"q{t}") if t % 10 == 9 else tool_call("step")
             for t in range(TURNS)]  # fmt: skip
    model = ScriptedModel({"w": [*turns, "done"], "advisor": ["advice"], "w:advisor": ["advice"]})
    advice = Advisor(mode="emulated", max_uses=4, context=context, **advisor)
    role = Role("worker", "Work.", tools=[step], max_turns=TURNS + 1, advisor=advice)
    g = Graph("g", model="haiku")
    g.node("w", role, "task")
    assert g.run_sync(client=model).ok
    consults = [r for r in model.requests if r.purpose == "advisor" and r.system == ADVISOR_SYSTEM]
    return [len(str(r.messages[0]["content"])) // 4 for r in consults]


def test_last_turns_keeps_advisor_input_flat_as_the_conversation_grows() -> None:
    full = consult_inputs("full")
    last = consult_inputs("last_turns", context_turns=4)
    assert len(full) == len(last) == 4
    assert full[-1] > 3 * full[0]  # the full transcript grows with the conversation
    assert max(last) < 1.2 * min(last)  # the bounded policy stays flat
    assert last[-1] < full[-1] / 3


def test_summary_policy_reads_a_summary_of_the_turns_it_leaves_out() -> None:
    sizes = consult_inputs("summary", context_turns=4)
    assert len(sizes) == 4 and max(sizes) < 1.5 * min(sizes)


def test_max_input_tokens_caps_the_full_transcript() -> None:
    capped = consult_inputs("full", max_input_tokens=1_000)
    assert max(capped) <= 1_050


def test_a_bad_context_policy_is_a_definition_error() -> None:
    try:
        Advisor(context="everything")  # type: ignore[arg-type]
    except GraphError as exc:
        assert "full, last_turns, summary" in str(exc)
    else:
        raise AssertionError("no error")
