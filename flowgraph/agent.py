"""The role runtime: one node's agent tool loop behind the ``Model`` seam.

Each role node has its own conversation (context isolation): instructions as the system prompt,
the rendered task plus upstream outputs as the first user message. The loop calls the model,
runs the tools it asks for (a failing tool becomes an error result the model reads, never a crash),
and ends when the model ends its turn, then validates a structured output, sending validation
errors back a bounded number of times. Only the final output leaves the node.
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from flowgraph.context import Context
from flowgraph.errors import NodeError
from flowgraph.events import Event, ModelTurn, ToolCalled
from flowgraph.graph import RoleNode
from flowgraph.model import ModelRequest
from flowgraph.router import Served

__all__ = ["NodeReport", "render_task", "run_role"]


# How a role reaches a model: the request, and the fallback models to try if the primary fails.
Caller = Callable[[ModelRequest, Sequence[str]], Awaitable[Served]]
CACHE = {"type": "ephemeral"}
SERVER_FALLBACK_BETA = "server-side-fallback-2026-07-01"


@dataclass
class NodeReport:
    """What a node did, filled in as it runs and recorded in the ledger when it ends."""

    turns: int = 0
    tool_calls: int = 0
    served: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # per-turn metadata, for audit


class _PathFormatter(string.Formatter):
    """``{plan.api.path}`` reaches into dicts and objects; dicts and lists render as JSON."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        root, *rest = re.split(r"\.", field_name)
        value = kwargs[root] if "[" not in root else super().get_field(root, args, kwargs)[0]
        for part in rest:
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        return value, root

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2)
        return str(super().format_field(value, format_spec))


def render_task(template: str, ctx: Context) -> str:
    """Fill a task template from the run input and upstream outputs."""
    values = {**ctx.input, **ctx.outputs}
    try:
        return _PathFormatter().format(template, **values)
    except (KeyError, AttributeError, TypeError, IndexError) as exc:
        raise NodeError(
            f"node {ctx.node!r}: its task template could not be filled ({type(exc).__name__}: "
            f"{exc}); check the field names against the upstream outputs"
        ) from None


def _first_message(node: RoleNode, ctx: Context) -> str:
    text = render_task(node.task, ctx)
    used = set(re.findall(r"\{(\w+)", node.task))
    extra = [d for d in node.after if d not in used and d in ctx.outputs]
    if extra:
        parts = [text, "", "Outputs of the steps before yours:"]
        for dep in extra:
            value = ctx.outputs[dep]
            shown = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
            parts.append(f"<{dep}>\n{shown}\n</{dep}>")
        text = "\n".join(parts)
    if node.role.output is not None:
        schema = json.dumps(node.role.output.model_json_schema())
        text += (
            "\n\nWhen you are done, reply with only a JSON object (no prose) that matches this "
            f"JSON schema:\n{schema}"
        )
    return text


async def run_role(
    node: RoleNode,
    ctx: Context,
    call: Caller,
    report: NodeReport,
    emit: Callable[[Event], None],
) -> Any:
    """Run ``node``'s tool loop to the end and return its (validated) output."""
    role = node.role
    tools = {t.name: t for t in role.tool_list}
    messages: list[dict[str, Any]] = [{"role": "user", "content": _first_message(node, ctx)}]
    report.transcript = messages
    fixes_left = role.output_retries
    for turn in range(1, role.max_turns + 1):
        request = _request(node, messages, tools)
        served = await call(request, node.fallbacks)
        response = served.response
        _record_turn(report, turn, request, served)
        emit(
            ModelTurn(
                node.name,
                turn,
                served.served_by,
                response.stop_reason,
                response.usage.input_tokens,
                response.usage.output_tokens,
            )
        )
        messages.append({"role": "assistant", "content": list(response.content)})
        if response.stop_reason == "refusal":
            raise NodeError(f"node {node.name!r}: model {served.served_by} refused the task")
        if response.tool_uses:
            results = [
                await _call_tool(tools, use, ctx, report, emit) for use in response.tool_uses
            ]
            messages.append({"role": "user", "content": results})
            continue
        if response.stop_reason == "pause_turn":
            continue
        if role.output is None:
            return response.text
        try:
            return _parse_output(role.output, response.text)
        except ValueError as problem:
            if fixes_left == 0:
                raise NodeError(
                    f"node {node.name!r}: output never matched {role.output.__name__} "
                    f"({problem}); loosen the schema or raise Role(output_retries=...)"
                ) from None
            fixes_left -= 1
            messages.append(
                {
                    "role": "user",
                    "content": f"Your reply did not validate: {problem}. Reply with only the "
                    "corrected JSON object.",
                }
            )
    raise NodeError(
        f"node {node.name!r} used all {role.max_turns} turns without finishing; raise "
        "Role(max_turns=...) or narrow the task"
    )


def _request(
    node: RoleNode, messages: list[dict[str, Any]], tools: Mapping[str, Any]
) -> ModelRequest:
    """The turn's request; with caching on, breakpoints on the stable prefix (system and tools)
    and on the end of the conversation, so each turn reads what the last one wrote."""
    role = node.role
    params = [t.to_param() for t in tools.values()]
    system: Any = role.instructions
    sent = list(messages)
    if role.cache:
        system = [{"type": "text", "text": role.instructions, "cache_control": CACHE}]
        if params:
            params[-1] = {**params[-1], "cache_control": CACHE}
        sent[-1] = _with_breakpoint(sent[-1])
    extra: dict[str, Any] = {}
    betas: tuple[str, ...] = ()
    if node.server_fallbacks:
        extra["fallbacks"] = [{"model": m} for m in node.server_fallbacks]
        betas = (SERVER_FALLBACK_BETA,)
    return ModelRequest(
        model=node.model,
        system=system,
        messages=sent,
        tools=params,
        max_tokens=role.max_tokens,
        node=node.name,
        betas=betas,
        extra=extra,
    )


def _with_breakpoint(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` whose last block carries a cache breakpoint (the stored
    conversation stays unmarked: the API allows only four breakpoints per request)."""
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks[-1] = {**blocks[-1], "cache_control": CACHE}
    return {**message, "content": blocks}


def _record_turn(report: NodeReport, turn: int, request: ModelRequest, served: Served) -> None:
    report.turns = turn
    report.model = served.served_by
    response = served.response
    report.requests.append(
        {
            "turn": turn,
            "model": request.model,
            "max_tokens": request.max_tokens,
            "betas": list(request.betas),
            "extra": sorted(request.extra),
            "served_by": served.served_by,
            "attempts": [dataclasses.asdict(a) for a in served.attempts],
            "response_id": response.id,
            "stop_reason": response.stop_reason,
            "usage": {**response.usage.to_dict(), "iterations": list(response.usage.iterations)},
        }
    )
    entry: dict[str, Any] = {"turn": turn, "model": served.served_by}
    if served.fallbacks_taken:
        entry["fallbacks"] = [
            {"model": a.model, "outcome": a.outcome, "reason": a.reason}
            for a in served.attempts
            if a.outcome != "served"
        ]
    server_fallback = [b for b in served.response.content if b.get("type") == "fallback"]
    if server_fallback:
        entry["server_fallbacks"] = server_fallback
    report.served.append(entry)


async def _call_tool(
    tools: Mapping[str, Any],
    use: dict[str, Any],
    ctx: Context,
    report: NodeReport,
    emit: Callable[[Event], None],
) -> dict[str, Any]:
    report.tool_calls += 1
    tool = tools.get(use["name"])
    if tool is None:
        content, is_error = f"unknown tool {use['name']!r}; tools: {', '.join(tools)}", True
    else:
        result = await tool.call(dict(use.get("input") or {}), ctx)
        content, is_error = result.content, result.is_error
    emit(ToolCalled(ctx.node, use["name"], is_error))
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use["id"], "content": content}
    if is_error:
        block["is_error"] = True
    return block


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _parse_output(schema: type[BaseModel], text: str) -> Any:
    """Validate the model's final text as ``schema``; ValueError says what is wrong."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = schema.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the reply"
        raise ValueError(f"{where}: {first['msg']}") from None
    return value.model_dump(mode="json")
