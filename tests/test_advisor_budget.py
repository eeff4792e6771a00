"""Run-wide advisor budgets: a cap on consults and on advisor dollars shared by every node,
parallel ones included; reservations for late roles; native requests offered only what the run
has left; uses left and early-burn warnings in events and the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowgraph import (
    AdvisorBudget,
    AdvisorConsulted,
    AdvisorWarning,
    ConfigError,
    Event,
    Graph,
    Ledger,
    Role,
    tool,
)
from flowgraph.agent.consults import Advisor
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing import ScriptedModel, tool_call
from flowgraph.testing.emulator import Emulator, Reply

NODES = ("a", "b", "c", "d")


def ask(question: str = "which approach?") -> Any:
    return tool_call("advisor", question=question)


def consults(run_dir: Path) -> list[dict[str, Any]]:
    doc = Ledger.read(run_dir)
    return [c for record in doc.nodes.values() for c in record.consults]


def test_four_parallel_nodes_share_a_run_cap_of_three(tmp_path: Path) -> None:
    script: dict[str, Any] = {n: [ask("1"), ask("2"), ask("3"), "done"] for n in NODES}
    script["advisor"] = ["advice"]
    model = ScriptedModel(script, delay=0.01)
    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_uses=3))
    role = Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3))
    for name in NODES:
        g.node(name, role, "task")
    events: list[Event] = []
    result = g.run_sync(client=model, run_dir=tmp_path / "run", on_event=events.append)
    assert result.ok
    recorded = consults(tmp_path / "run")
    assert sum(1 for c in recorded if c["outcome"] == "ok") == 3
    assert sum(1 for r in model.requests if r.purpose == "advisor") == 3
    refused = [c for c in recorded if c["outcome"] == "error"]
    assert len(refused) == 9 and all("max_uses_exceeded" in c["error"] for c in refused)
    seen = [e for e in events if isinstance(e, AdvisorConsulted) and e.outcome == "ok"]
    assert len(seen) == 3 and seen[-1].run_uses_left == 0  # in-flight consults hold their use
    doc = Ledger.read(tmp_path / "run")
    assert {r.advisor["run"]["left"] for r in doc.nodes.values() if r.advisor} == {0}


def test_native_requests_are_offered_only_what_the_run_has_left(tmp_path: Path) -> None:
    @tool
    def step() -> str:
        """Do the next step."""
        return "ok"

    marked = Reply.consult("asking").content

    def executor(body: dict[str, Any]) -> Reply:
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if turn >= 3:
            return Reply.text("done")
        return Reply((*marked, {"type": "tool_use", "name": "step", "input": {}}), "tool_use")

    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_uses=3))
    role = Role("worker", "Work.", tools=[step], advisor=Advisor(mode="native", max_uses=3))
    for name in NODES:
        g.node(name, role, "task")
    with Emulator({"claude-haiku-5-5": executor}) as emu:
        client = AnthropicModel("k", base_url=emu.base_url)
        result = g.run_sync(client=client, run_dir=tmp_path / "run")
        offered = [t.get("max_uses") for r in emu.requests for t in (r.body or {}).get("tools", [])
                   if t.get("type") == "advisor_20260301"]  # fmt: skip
    assert result.ok
    assert sum(1 for c in consults(tmp_path / "run") if c["outcome"] == "ok") == 3
    assert sum(offered) <= 3 + len(NODES) * 3 and max(offered) <= 3


def test_a_reservation_keeps_uses_for_a_late_reviewer(tmp_path: Path) -> None:
    script: dict[str, Any] = {n: [ask(), ask(), ask(), "done"] for n in ("a", "b")}
    script["review"] = [ask("is it right?"), "approved"]
    script["advisor"] = ["advice"]
    budget = AdvisorBudget(max_uses=3, reserve={"reviewer": 1})
    g = Graph("g", model="haiku", advisor_budget=budget)
    worker = Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3))
    reviewer = Role("reviewer", "Review.", advisor=Advisor(mode="emulated", max_uses=1))
    g.node("a", worker, "task")
    g.node("b", worker, "task")
    g.node("review", reviewer, "review", after=["a", "b"])
    assert g.run_sync(client=ScriptedModel(script), run_dir=tmp_path / "run").ok
    doc = Ledger.read(tmp_path / "run")
    ok = {n: sum(1 for c in r.consults if c["outcome"] == "ok") for n, r in doc.nodes.items()}
    assert ok["a"] + ok["b"] == 2 and ok["review"] == 1


def test_an_advisor_dollar_cap_is_never_passed_by_more_than_one_consult(tmp_path: Path) -> None:
    script: dict[str, Any] = {n: [ask(str(i)) for i in range(8)] + ["done"] for n in NODES}
    script["advisor"] = ["advice " * 100]
    cap = 0.2  # an opus consult may cost up to ~$0.06 (700 tokens out at $75 / MTok)
    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_cost_usd=cap))
    role = Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=8), max_turns=12)
    for name in NODES:
        g.node(name, role, "task")
    assert g.run_sync(client=ScriptedModel(script, delay=0.01), run_dir=tmp_path / "run").ok
    costs = [c["cost_usd"] for c in consults(tmp_path / "run") if c["outcome"] == "ok"]
    assert costs and sum(costs) <= cap + max(costs)
    refused = [c for c in consults(tmp_path / "run") if c["outcome"] == "error"]
    assert refused  # the cap was reached, so some consults were refused


def test_resume_counts_the_consults_of_earlier_processes(tmp_path: Path) -> None:
    script: dict[str, Any] = {"a": [ask(), ask(), "done"], "b": [RuntimeError("crash")],
                              "advisor": ["advice"]}  # fmt: skip
    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_uses=3))
    role = Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3))
    g.node("a", role, "task")
    g.node("b", role, "task", after=["a"])
    first = g.run_sync(client=ScriptedModel(script), run_dir=tmp_path / "run")
    assert not first.ok and first.statuses["a"] == "passed"
    script["b"] = [ask(), ask(), "done"]
    assert g.run_sync(client=ScriptedModel(script), run_dir=tmp_path / "run").ok
    doc = Ledger.read(tmp_path / "run")
    assert sum(1 for c in doc.nodes["b"].consults if c["outcome"] == "ok") == 1


def test_early_burn_warns_when_all_uses_go_in_the_first_third(tmp_path: Path) -> None:
    script = {"w": [ask("1"), ask("2"), ask("3"), "done"], "advisor": ["advice"]}
    g = Graph("g", model="haiku")
    g.node("w", Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3),
                     max_turns=20), "task")  # fmt: skip
    events: list[Event] = []
    assert g.run_sync(client=ScriptedModel(script), run_dir=tmp_path / "r",
                      on_event=events.append).ok  # fmt: skip
    warnings = [e for e in events if isinstance(e, AdvisorWarning)]
    early = [w for w in warnings if w.kind == "early_burn"]
    assert len(early) == 1 and "by turn 3 of 20" in early[0].message
    record = Ledger.read(tmp_path / "r").nodes["w"]
    assert record.advisor is not None and record.advisor["left"] == 0
    assert "early_burn" in [w["kind"] for w in record.advisor["warnings"]]


def test_no_early_burn_warning_for_uses_spread_over_the_node(tmp_path: Path) -> None:
    @tool
    def step() -> str:
        """A step."""
        return "ok"

    work = [tool_call("step")] * 4
    script = {"w": [ask(), *work, ask(), *work, ask(), "done"], "advisor": ["advice"]}
    g = Graph("g", model="haiku")
    g.node("w", Role("worker", "Work.", tools=[step], max_turns=20,
                     advisor=Advisor(mode="emulated", max_uses=3)), "task")  # fmt: skip
    events: list[Event] = []
    assert g.run_sync(client=ScriptedModel(script), on_event=events.append).ok
    assert not [e for e in events if isinstance(e, AdvisorWarning) and e.kind == "early_burn"]


def test_bad_advisor_budgets_say_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="reserve holds 4 uses but max_uses is 3"):
        AdvisorBudget(max_uses=3, reserve={"a": 2, "b": 2})
    with pytest.raises(ConfigError, match="max_cost_usd must be a positive amount"):
        AdvisorBudget(max_cost_usd=-1)


def test_status_and_cost_show_uses_left_and_the_early_burn_warning(
    tmp_path: Path, cli: Any
) -> None:
    script = {"w": [ask("1"), ask("2"), ask("3"), "done"], "advisor": ["advice"]}
    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_uses=5))
    g.node("w", Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3),
                     max_turns=20), "task")  # fmt: skip
    assert g.run_sync(client=ScriptedModel(script), run_dir=tmp_path / "r").ok
    status = cli("status", str(tmp_path / "r"))
    assert status.returncode == 0 and "3 consults" in status.stdout
    assert "0 left (run 2)" in status.stdout
    cost = cli("cost", str(tmp_path / "r"))
    assert "warning: node 'w' spent all 3 advisor uses by turn 3 of 20" in cost.stdout


def test_the_live_view_shows_uses_left() -> None:
    import io

    from flowgraph.cli.progress import Progress

    script = {"w": [ask("1"), "done"], "advisor": ["advice"]}
    g = Graph("g", model="haiku", advisor_budget=AdvisorBudget(max_uses=4))
    g.node("w", Role("worker", "Work.", advisor=Advisor(mode="emulated", max_uses=3)), "task")
    out = io.StringIO()
    with Progress(out, live=False) as progress:
        assert g.run_sync(client=ScriptedModel(script), on_event=progress).ok
    assert "w: consulted claude-opus-5-5, 2 uses left, 3 left in run" in out.getvalue()
    assert progress.rows["w"].advisor == "2 left (run 3)"
