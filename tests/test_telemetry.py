"""Live observability: ``run.events()`` with text deltas from a streaming call, per-call wall
time and time to first token in the ledger, and OpenTelemetry spans (in-memory exporter)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowgraph import Event, Graph, Ledger, ModelCalled, Role, TextDelta, tool
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.telemetry import Telemetry
from flowgraph.testing.emulator import Emulator, Reply

ANSWER = "The quick brown fox jumps over the lazy dog. " * 12


@tool
def look() -> str:
    """Look around."""
    return "a fox"


def executor(body: dict[str, Any]) -> Reply:
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn == 0:
        return Reply((({"type": "tool_use", "name": "look", "input": {}}),), "tool_use")
    return Reply.text(ANSWER)


def graph() -> Graph:
    g = Graph("g", model="haiku")
    g.node("writer", Role("writer", "Write.", tools=[look], advisor=None), "write")
    g.node("editor", Role("editor", "Edit.", tools=[look], advisor=None), "edit", after=["writer"])
    return g


def test_run_events_yields_text_deltas_in_order(tmp_path: Path) -> None:
    async def main() -> list[Event]:
        with Emulator({"claude-haiku-5-5": executor}) as emu:
            client = AnthropicModel("k", base_url=emu.base_url)
            run = graph().start(client=client, run_dir=tmp_path / "run")
            seen = [event async for event in run.events()]
            assert (await run).ok
            await client.aclose()
            return seen

    seen = asyncio.run(main())
    deltas = [e for e in seen if isinstance(e, TextDelta) and e.node == "editor"]
    assert len(deltas) > 1 and "".join(d.text for d in deltas) == ANSWER
    calls = [e for e in seen if isinstance(e, ModelCalled)]
    assert len(calls) == 4 and all(c.ttft_s is not None and c.ttft_s <= c.wall_s for c in calls)
    latency = Ledger.read(tmp_path / "run").nodes["writer"].latency
    assert [c["kind"] for c in latency] == ["executor", "executor"]
    assert all(c["wall_s"] > 0 and c["ttft_s"] is not None for c in latency)


def test_otel_spans_for_run_nodes_model_and_tool_calls() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Emulator({"claude-haiku-5-5": executor}) as emu:
        client = AnthropicModel("k", base_url=emu.base_url)
        assert graph().run_sync(client=client, on_event=Telemetry(provider)).ok
    spans = exporter.get_finished_spans()
    names = sorted(s.name for s in spans)
    assert names.count("flowgraph.node writer") == 1 and names.count("flowgraph.node editor") == 1
    model_spans = [s for s in spans if s.name.startswith("chat ")]
    tool_spans = [s for s in spans if s.name == "execute_tool look"]
    assert len(model_spans) == 4 and len(tool_spans) == 2
    [run_span] = [s for s in spans if s.name == "flowgraph.run g"]
    nodes = {s.name.split()[-1]: s for s in spans if s.name.startswith("flowgraph.node")}
    for span in model_spans:
        attrs = span.attributes or {}
        assert attrs["gen_ai.request.model"] == "claude-haiku-5-5"
        assert int(attrs["gen_ai.usage.input_tokens"]) >= 0  # type: ignore[arg-type]
        assert int(attrs["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
        assert float(attrs["flowgraph.cost_usd"]) > 0  # type: ignore[arg-type]
        node = nodes[str(attrs["flowgraph.node"])]
        assert span.parent is not None and span.parent.span_id == node.context.span_id
    for node in nodes.values():
        assert node.parent is not None and node.parent.span_id == run_span.context.span_id
    parents = {s.parent.span_id for s in tool_spans if s.parent is not None}
    assert parents == {nodes["writer"].context.span_id, nodes["editor"].context.span_id}
