"""The advisor: emulated consults on any model, the per-node cap, triggers, and accounting.
(Native consults through the real SDK and the emulator are in test_advisor_native.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowgraph import Graph, GraphError, Ledger, ModelError, Role, TransientModelError, tool
from flowgraph.agent.consults import DEFAULT_GUIDANCE, Advisor
from flowgraph.models.seam import ModelRequest
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing import ScriptedModel, text, tool_call

OPUS = "claude-opus-5-5"


def ask(question: str = "which approach?") -> Any:
    return tool_call("advisor", question=question)


def run(
    script: dict[str, Any], advisor: Advisor, tmp_path: Path, **role: Any
) -> tuple[Any, Any, ScriptedModel]:
    model = ScriptedModel(script)
    g = Graph("g", model="haiku")
    g.node("w", Role("worker", "Do the work.", advisor=advisor, **role), "task")
    result = g.run_sync(client=model, run_dir=tmp_path / "run")
    return result, Ledger.read(tmp_path / "run").nodes["w"], model


def test_emulated_consult_returns_advice_and_is_priced_at_the_advisor(tmp_path: Path) -> None:
    script = {"w": [ask(), "done"], "advisor": ["Use a binary search."]}
    result, record, model = run(script, Advisor(mode="emulated"), tmp_path)
    assert result.ok
    consult_request = next(r for r in model.requests if r.purpose == "advisor")
    assert consult_request.model == OPUS and not consult_request.tools
    assert "Do the work." in consult_request.messages[0]["content"]  # it read the transcript
    tool_result = model.requests[-1].messages[-1]["content"][0]
    assert tool_result["content"] == "Use a binary search."
    [consult] = record.consults
    assert consult["mode"] == "emulated" and consult["model"] == OPUS
    assert consult["advice"] == "Use a binary search."
    row = record.spend[f"advisor:{OPUS}"]
    price = DEFAULT_PRICING.get(OPUS)
    assert price is not None
    expected = (row["input_tokens"] * price.input + row["output_tokens"] * price.output) / 1e6
    assert consult["cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-12)
    executor = sum(r["cost_usd"] for k, r in record.spend.items() if k.startswith("executor:"))
    assert record.cost_usd == pytest.approx(executor + row["cost_usd"], rel=1e-12)


def test_max_uses_holds_across_the_whole_node(tmp_path: Path) -> None:
    script = {"w": [ask("1"), ask("2"), ask("3"), ask("4"), ask("5"), "done"], "advisor": ["a"]}
    result, record, model = run(script, Advisor(mode="emulated", max_uses=2), tmp_path)
    assert result.ok
    assert sum(1 for r in model.requests if r.purpose == "advisor") == 2
    outcomes = [c["outcome"] for c in record.consults]
    assert outcomes == ["ok", "ok", "error", "error", "error"]
    assert record.consults[2]["error"] == "max_uses_exceeded"
    executor = [r for r in model.requests if r.purpose == "executor"]
    third = executor[3].messages[-1]["content"][0]
    assert third["is_error"] and "max_uses_exceeded" in third["content"]


def test_an_advisor_error_lets_the_executor_carry_on(tmp_path: Path) -> None:
    down = TransientModelError("overloaded (529)", status=529, model=OPUS)
    script = {"w": [ask(), "done anyway"], "advisor": [down]}
    result, record, model = run(script, Advisor(mode="emulated"), tmp_path)
    assert result.ok and result["w"] == "done anyway"
    assert record.consults[0]["outcome"] == "error"
    result_block = model.requests[-1].messages[-1]["content"][0]
    assert result_block["is_error"] and "advisor unavailable" in result_block["content"]


def test_repeated_tool_failure_triggers_one_consult_at_the_nth_failure(tmp_path: Path) -> None:
    @tool
    def build(target: str) -> str:
        """Build it."""
        raise RuntimeError("compile error")

    same = tool_call("build", target="app")
    script = {"w": [same, same, same, "gave up"], "advisor": ["Fix the import first."]}
    advisor = Advisor(mode="emulated", on_repeated_failure=2)
    result, record, model = run(script, advisor, tmp_path, tools=[build])
    assert result.ok
    [consult] = record.consults
    assert consult["trigger"] == "repeated_failure" and consult["turn"] == 2
    assert "failed 2 times in a row" in consult["reason"]
    executor = [r for r in model.requests if r.purpose == "executor"]
    injected = executor[2].messages[-1]["content"][-1]
    assert injected["type"] == "text" and "Fix the import first." in injected["text"]


def test_failed_check_triggers_a_consult_and_the_advice_goes_back(tmp_path: Path) -> None:
    async def has_tests(output: Any, ctx: Any) -> str | None:
        return None if "tests" in output else "the answer mentions no tests"

    script = {"w": ["just code", "code with tests"], "advisor": ["Add a unit test."]}
    advisor = Advisor(mode="emulated", on_check_failure=True)
    result, record, model = run(script, advisor, tmp_path, check=has_tests)
    assert result["w"] == "code with tests"
    [consult] = record.consults
    assert consult["trigger"] == "check_failure"
    assert consult["reason"] == "the answer mentions no tests"
    feedback = model.requests[-1].messages[-1]["content"][0]["text"]
    assert "mentions no tests" in feedback and "Add a unit test." in feedback


def test_before_done_review_fires_once_and_can_send_the_work_back(tmp_path: Path) -> None:
    script = {"w": ["first answer", "better answer"], "advisor": ["Handle the empty list.", "STOP"]}
    advisor = Advisor(mode="emulated", before_done=True)
    result, record, model = run(script, advisor, tmp_path)
    assert result["w"] == "better answer"
    assert [c["trigger"] for c in record.consults] == ["before_done"]  # once, not twice
    assert "Handle the empty list." in model.requests[-1].messages[-1]["content"][0]["text"]


def test_reserve_final_keeps_the_last_use_for_the_review(tmp_path: Path) -> None:
    script = {"w": [ask("1"), ask("2"), "answer"], "advisor": ["a", "STOP"]}
    advisor = Advisor(mode="emulated", max_uses=2, before_done=True, reserve_final=True)
    result, record, _ = run(script, advisor, tmp_path)
    assert result.ok
    assert [(c["trigger"], c["outcome"]) for c in record.consults] == [
        ("executor", "ok"),
        ("executor", "error"),
        ("before_done", "ok"),
    ]


def test_guidance_goes_into_the_executor_instructions(tmp_path: Path) -> None:
    _, _, model = run({"w": ["done"]}, Advisor(mode="emulated"), tmp_path, cache=False)
    assert model.requests[0].system == "Do the work.\n\n" + DEFAULT_GUIDANCE


def test_graph_default_advisor_is_inherited_and_can_be_turned_off() -> None:
    g = Graph("g", model="haiku", advisor=Advisor(model="opus"))
    g.node("a", Role("r1", "x"), "t")
    g.node("b", Role("r2", "x", advisor=None), "t")
    nodes = g.validate().nodes
    assert nodes["a"].advisor_model == OPUS  # type: ignore[union-attr]
    assert nodes["b"].advisor is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Advisor(max_uses=0), "max_uses must be at least 1"),
        (lambda: Advisor(reserve_final=True), "reserve_final needs before_done"),
        (lambda: Advisor(mode="psychic"), "is not native, emulated or auto"),  # type: ignore[arg-type]
    ],
)
def test_bad_advisor_settings_are_definition_errors(make: Any, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        make()


def test_unknown_or_weaker_advisor_model_is_refused() -> None:
    g = Graph("g", model="opus")
    with pytest.raises(GraphError, match="unknown model 'opsu'"):
        g.node("a", Role("r", "x", advisor=Advisor(model="opsu")), "t")
    with pytest.raises(GraphError, match="is weaker than its executor"):
        g.node("b", Role("r", "x", advisor=Advisor(model="haiku")), "t")


def test_consults_from_a_crashed_attempt_still_count_on_resume(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(request: ModelRequest) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the turn after the first consult fails for good
            # (a lone 529 would now be retried in place by the router: a flaky endpoint slows
            # a run instead of failing it)
            raise ModelError("refused", status=400)
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return [ask(), ask(), text("done")][min(turn, 2)]

    g = Graph("g", model="haiku")
    g.node("w", Role("r", "x", advisor=Advisor(mode="emulated", max_uses=1), retries=0), "t")
    model = ScriptedModel({"w": flaky, "advisor": ["a"]})
    assert g.run_sync(client=model, run_dir=tmp_path / "run").status == "failed"
    assert g.run_sync(client=model, run_dir=tmp_path / "run").ok
    record = Ledger.read(tmp_path / "run").nodes["w"]
    assert sum(1 for c in record.consults if c["outcome"] == "ok") == 1  # the cap held
