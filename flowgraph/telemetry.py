"""OpenTelemetry for a run (``pip install 'flowgraph-llm[otel]'``): spans built from its events.

``Telemetry`` is an ``on_event`` listener: ``graph.run(on_event=Telemetry())`` (or
``fanout(progress, Telemetry())``). It opens a span for the run and one per node, and records
one span per model call and per tool call under the node that made it, with their real start and
end times (the events carry the wall time). Model-call spans follow the OpenTelemetry GenAI
semantic conventions (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``) plus ``flowgraph.cost_usd``, ``flowgraph.kind`` (executor or
advisor) and ``flowgraph.ttft_s``. Spans go to the tracer provider given, or the global one.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from flowgraph.declare.names import top_of
from flowgraph.events import (
    Event,
    ModelCalled,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunStarted,
    ToolCalled,
)

__all__ = ["Telemetry"]


class Telemetry:
    """Turns a run's events into OpenTelemetry spans.

    Args:
        tracer_provider: where spans go (the global provider by default).
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._tracer = trace.get_tracer("flowgraph", tracer_provider=tracer_provider)
        self._run: Span | None = None
        self._nodes: dict[str, Span] = {}

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind is RunStarted:
            assert isinstance(event, RunStarted)
            self._run = self._tracer.start_span(
                f"flowgraph.run {event.graph}",
                attributes={"flowgraph.run_id": event.run_id, "flowgraph.graph": event.graph},
            )
        elif kind is NodeStarted:
            assert isinstance(event, NodeStarted)
            self._nodes[event.node] = self._tracer.start_span(
                f"flowgraph.node {event.node}",
                context=self._context(None),
                attributes={
                    "flowgraph.node": event.node,
                    "flowgraph.attempt": event.attempt,
                    "gen_ai.request.model": event.model,
                },
            )
        elif kind is ModelCalled:
            assert isinstance(event, ModelCalled)
            self._model_call(event)
        elif kind is ToolCalled:
            assert isinstance(event, ToolCalled)
            self._tool_call(event)
        elif kind is NodeFinished:
            assert isinstance(event, NodeFinished)
            self._finish_node(event)
        elif kind is RunFinished and self._run is not None:
            assert isinstance(event, RunFinished)
            self._run.set_attribute("flowgraph.status", str(event.status))
            for span in self._nodes.values():  # nodes a stopped run left open
                span.end()
            self._nodes.clear()
            self._run.end()
            self._run = None

    def _context(self, node: str | None) -> Any:
        span = (self._nodes.get(node) or self._nodes.get(top_of(node))) if node else None
        span = span or self._run
        return trace.set_span_in_context(span) if span is not None else None

    def _model_call(self, event: ModelCalled) -> None:
        end = time.time_ns()
        span = self._tracer.start_span(
            f"chat {event.model}",
            context=self._context(event.node),
            start_time=end - int(event.wall_s * 1e9),
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": event.model,
                "gen_ai.response.model": event.model,
                "gen_ai.usage.input_tokens": event.input_tokens,
                "gen_ai.usage.output_tokens": event.output_tokens,
                "flowgraph.node": event.node,
                "flowgraph.kind": event.kind,
                "flowgraph.cost_usd": -1.0 if event.cost_usd is None else event.cost_usd,
                "flowgraph.ttft_s": -1.0 if event.ttft_s is None else event.ttft_s,
            },
        )
        span.end(end_time=end)

    def _tool_call(self, event: ToolCalled) -> None:
        end = time.time_ns()
        span = self._tracer.start_span(
            f"execute_tool {event.tool}",
            context=self._context(event.node),
            start_time=end - int((event.wall_s or 0.0) * 1e9),
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": event.tool,
                "flowgraph.node": event.node,
                "flowgraph.is_error": event.is_error,
            },
        )
        if event.is_error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    def _finish_node(self, event: NodeFinished) -> None:
        span = self._nodes.pop(event.node, None)
        if span is None:
            return
        span.set_attribute("flowgraph.status", str(event.status))
        if event.error:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end()
