"""Role nodes on the real SDK against the emulator: fallbacks, the shared breaker, 429 pauses,
fail-fast errors, budgets, exact accounting, prompt caching, and no key anywhere."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowgraph import FallbackTaken, Graph, Ledger, Role, TransientModelError, tool
from flowgraph.cli.output import transcript_of
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing.emulator import Emulator, Reply

PRIMARY = "claude-opus-4-7"
BACKUP = "claude-sonnet-4-6"
KEY = "sk-test-KEY-must-never-be-written-0123456789"


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"found {q}"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY) as emulator:
        yield emulator


def client(emu: Emulator, **kw: Any) -> AnthropicModel:
    return AnthropicModel(KEY, base_url=emu.base_url, **kw)


def two_turns(body: dict[str, Any]) -> Reply:
    """Turn 1 calls the tool, turn 2 answers."""
    if len(body["messages"]) == 1:
        return Reply.tool_use("lookup", {"q": "x"})
    return Reply.text("answer")


def team(n: int = 1, **role: Any) -> Graph:
    g = Graph("team")
    r = Role("worker", "Answer.", model=PRIMARY, tools=[lookup], fallbacks=[BACKUP], **role)
    for i in range(n):
        g.node(f"w{i}", r, "work")
    return g


@pytest.mark.parametrize("stream", [True, False])
def test_multi_turn_tool_node_and_exact_accounting(
    emu: Emulator, stream: bool, tmp_path: Path
) -> None:
    emu.script(PRIMARY, two_turns)
    result = team().run_sync(client=client(emu, stream=stream), run_dir=tmp_path / "run")
    assert result.ok and result["w0"] == "answer"
    record = Ledger.read(tmp_path / "run").nodes["w0"]
    billed = emu.billed[PRIMARY]
    assert record.usage == billed.to_dict()
    price = DEFAULT_PRICING.get(PRIMARY)
    assert price is not None
    expected = (
        billed.input_tokens * price.input
        + billed.output_tokens * price.output
        + billed.cache_creation_input_tokens * price.write_5m
        + billed.cache_read_input_tokens * price.read
    ) / 1_000_000
    assert record.cost_usd == pytest.approx(expected, rel=1e-12)
    assert [s["model"] for s in record.served] == [PRIMARY, PRIMARY]


def test_overload_is_absorbed_by_the_fallback_and_recorded(emu: Emulator, tmp_path: Path) -> None:
    emu.script(PRIMARY, two_turns)
    emu.script(BACKUP, two_turns)
    emu.fault("overloaded", model=PRIMARY, call=0)
    events: list[FallbackTaken] = []
    result = team().run_sync(
        client=client(emu),
        run_dir=tmp_path / "run",
        on_event=lambda e: events.append(e) if isinstance(e, FallbackTaken) else None,
    )
    assert result.ok
    turn1 = Ledger.read(tmp_path / "run").nodes["w0"].served[0]
    assert turn1["model"] == BACKUP
    assert turn1["fallbacks"][0]["model"] == PRIMARY
    assert "overloaded (529)" in turn1["fallbacks"][0]["reason"]
    assert events and events[0].to_model == BACKUP and events[0].node == "w0"


@pytest.mark.parametrize(
    "kind", ["server_error", "unavailable", "drop", "malformed", "sse_error", "slow"]
)
def test_each_transient_fault_is_survived_through_the_fallback(emu: Emulator, kind: str) -> None:
    emu.script(PRIMARY, two_turns)
    emu.script(BACKUP, two_turns)
    options = {"delay": 5.0} if kind == "slow" else {}
    emu.fault(kind, model=PRIMARY, call=0, **options)  # type: ignore[arg-type]
    result = team().run_sync(client=client(emu, timeout=1.0))
    assert result.ok, result.errors


def test_rate_limit_pauses_the_model_and_retries_it(emu: Emulator, tmp_path: Path) -> None:
    emu.script(PRIMARY, two_turns)
    emu.fault("rate_limit", model=PRIMARY, call=0, retry_after=0.2)
    result = team().run_sync(client=client(emu), run_dir=tmp_path / "run")
    assert result.ok
    record = Ledger.read(tmp_path / "run").nodes["w0"]
    assert [s["model"] for s in record.served] == [PRIMARY, PRIMARY]
    assert emu.calls(BACKUP) == 0


def test_a_run_of_overloads_makes_parallel_nodes_skip_the_model_during_the_cooldown(
    emu: Emulator,
) -> None:
    emu.latency = 0.05
    emu.script(PRIMARY, two_turns)
    emu.script(BACKUP, two_turns)
    emu.fault("overloaded", model=PRIMARY)  # every call: three in a row open the breaker
    model = client(emu)
    inner = model.request
    after_open: list[str] = []
    overloads = 0

    async def watching(request: Any) -> Any:
        nonlocal overloads
        if overloads >= 3:
            after_open.append(request.model)
        try:
            return await inner(request)
        except TransientModelError:
            overloads += 1
            raise

    model.request = watching  # type: ignore[method-assign]
    assert team(4).run_sync(client=model).ok
    # Every request sent once the breaker opened went to the fallback: the breaker is shared.
    assert after_open and set(after_open) == {BACKUP}


@pytest.mark.parametrize(("status", "words"), [(400, "400"), (401, "ANTHROPIC_API_KEY")])
def test_bad_request_and_bad_key_fail_fast_without_fallback(
    emu: Emulator, status: int, words: str
) -> None:
    if status == 401:
        model = AnthropicModel("wrong-key", base_url=emu.base_url)
    else:
        emu.fault("status", model=PRIMARY, call=0, status=400)
        model = client(emu)
    result = team().run_sync(client=model)
    assert result.statuses["w0"] == "failed"
    assert words in result.errors["w0"]
    assert len(emu.requests) == 1  # no retry, no fallback


def test_node_budget_stops_before_the_call_and_resume_with_more_finishes(
    emu: Emulator, tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    emu.script(PRIMARY, two_turns)
    starved = team(max_cost_usd=0.0001).run_sync(client=client(emu), run_dir=tmp_path / "run")
    assert starved.status == "budget_exceeded"
    assert starved.statuses["w0"] == "budget_exceeded"
    assert "would pass its budget" in starved.errors["w0"]
    assert len(emu.requests) == 0  # no call started past the budget
    doc = Ledger.read(tmp_path / "run")
    assert "--max-cost-usd" in doc.next_step
    fed = team(max_cost_usd=1.0).run_sync(client=client(emu), run_dir=tmp_path / "run")
    assert fed.ok


def test_run_budget_is_shared_by_parallel_branches(emu: Emulator, tmp_path: Path) -> None:
    emu.latency = 0.05
    emu.script(PRIMARY, lambda body: Reply.text("done"))
    # One call's estimate is about $0.077 (1,024 output tokens at $75/MTok): room for two.
    g = team(6)
    g.max_cost_usd = 0.16
    result = g.run_sync(client=client(emu), run_dir=tmp_path / "run")
    assert result.status == "budget_exceeded"
    passed = [n for n, s in result.statuses.items() if s == "passed"]
    assert len(passed) == 2 and len(emu.requests) == 2
    spent = Ledger.read(tmp_path / "run").costs["run"]["cost_usd"]
    assert spent <= 0.16
    more = team(6).run_sync(client=client(emu), run_dir=tmp_path / "run", max_cost_usd=1.0)
    assert more.ok and len(emu.requests) == 6  # the two passed nodes were not paid again


def test_prompt_caching_reads_the_prefix_on_later_turns(emu: Emulator, tmp_path: Path) -> None:
    emu.script(PRIMARY, two_turns)
    team().run_sync(client=client(emu), run_dir=tmp_path / "cached")
    cached = Ledger.read(tmp_path / "cached").nodes["w0"]
    emu.script(PRIMARY, two_turns)
    team(cache=False).run_sync(client=client(emu), run_dir=tmp_path / "plain")
    plain = Ledger.read(tmp_path / "plain").nodes["w0"]
    assert cached.usage["cache_read_input_tokens"] > 0
    assert plain.usage["cache_read_input_tokens"] == 0
    assert cached.usage["cache_creation_input_tokens"] > 0


@pytest.mark.slow
def test_no_trace_of_the_api_key_in_the_run_dir_or_logs(
    emu: Emulator, tmp_path: Path, flowgraph_exe: list[str]
) -> None:
    graph_file = tmp_path / "g.py"
    graph_file.write_text(
        "from flowgraph import Graph, Role\n"
        f"graph = Graph('keyed')\ngraph.node('a', Role('r', 'x', model={PRIMARY!r}), 'go')\n"
    )
    env = {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": emu.base_url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*flowgraph_exe, "run", str(graph_file), "--run-dir", "r", "--log-json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout + done.stderr
    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert files and not [p for p in files if KEY.encode() in p.read_bytes()]
    assert json.loads((tmp_path / "r" / "ledger.json").read_text())["status"] == "passed"
    assert all(KEY not in json.dumps(r.headers) for r in emu.requests)


def test_server_side_refusal_fallback_passes_through_and_is_recorded(
    emu: Emulator, tmp_path: Path
) -> None:
    fallback_block = {
        "type": "fallback",
        "from": {"model": PRIMARY},
        "to": {"model": BACKUP},
        "trigger": {"type": "refusal"},
    }

    def refuse_then_serve(body: dict[str, Any]) -> dict[str, Any]:
        if len(body["messages"]) == 1:
            return {
                "content": [fallback_block, {"type": "tool_use", "id": "toolu_f1", "name": "lookup",
                                             "input": {"q": "x"}}],
                "stop_reason": "tool_use",
                "iterations": [{"type": "fallback_message", "model": BACKUP, "input_tokens": 50,
                                "output_tokens": 20}],
            }  # fmt: skip
        return {"content": [{"type": "text", "text": "answer"}], "stop_reason": "end_turn"}

    emu.script(PRIMARY, refuse_then_serve)
    g = Graph("g")
    g.node("w", Role("r", "x", model=PRIMARY, tools=[lookup], server_fallbacks=[BACKUP]), "go")
    assert g.run_sync(client=client(emu), run_dir=tmp_path / "run").ok
    first, second = emu.requests
    assert first.body["fallbacks"] == [{"model": BACKUP}]
    assert "server-side-fallback-2026-07-01" in first.headers["anthropic-beta"]
    assert second.body["messages"][1]["content"][0] == fallback_block  # echoed back in place
    record = Ledger.read(tmp_path / "run").nodes["w"]
    assert record.served[0]["server_fallbacks"] == [fallback_block]
    assert record.spend[f"executor:{BACKUP}"]["output_tokens"] == 20  # priced at the server


def test_transcript_keeps_request_metadata_and_full_responses(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.script(PRIMARY, two_turns)
    emu.script(BACKUP, two_turns)
    emu.fault("overloaded", model=PRIMARY, call=0)  # turn 1 is served by the fallback
    team().run_sync(client=client(emu), run_dir=tmp_path / "run")
    archive = transcript_of(tmp_path / "run", "w0")  # what `flowgraph output --transcript` reads
    first, second = archive["requests"]
    answered = [r for r in emu.requests if r.response_id]
    assert [r.model for r in answered] == [BACKUP, PRIMARY]
    for request, sent in zip(archive["requests"], answered, strict=True):
        assert request["model"] == PRIMARY  # what the node asked for
        assert request["max_tokens"] == sent.body["max_tokens"]
        assert request["response_id"] == sent.response_id
        assert sent.usage is not None
        assert all(request["usage"][k] == v for k, v in sent.usage.items() if k != "iterations")
        assert request["betas"] == [] and request["extra"] == []
    assert (first["turn"], first["served_by"], first["stop_reason"]) == (1, BACKUP, "tool_use")
    assert [(a["model"], a["outcome"]) for a in first["attempts"]] == [
        (PRIMARY, "failed"),
        (BACKUP, "served"),
    ]
    assert (second["turn"], second["served_by"], second["stop_reason"]) == (2, PRIMARY, "end_turn")
    assert second["attempts"] == [{"model": PRIMARY, "outcome": "served", "reason": ""}]
    assert archive["messages"][1]["content"][0]["type"] == "tool_use"
    assert archive["messages"][-1]["content"] == [{"type": "text", "text": "answer"}]


def test_per_model_concurrency_limit_holds_across_nodes(emu: Emulator) -> None:
    from flowgraph.models.router import ModelLimits

    emu.latency = 0.02
    emu.script(PRIMARY, lambda body: Reply.text("ok"))
    peak = running = 0
    model = client(emu)
    inner = model.request

    async def counting(request: Any) -> Any:
        nonlocal peak, running
        running += 1
        peak = max(peak, running)
        try:
            return await inner(request)
        finally:
            running -= 1

    model.request = counting  # type: ignore[method-assign]
    g = team(10)
    g.limits = {PRIMARY: ModelLimits(max_concurrent=3)}
    assert g.run_sync(client=model).ok
    assert peak == 3
