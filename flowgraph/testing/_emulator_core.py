"""The Messages emulator's logic without HTTP: request validation, prompt cache, message shapes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowgraph.testing._emulator_advisor import check_history
from flowgraph.testing._emulator_replies import (
    Fault,
    Reply,
    block_tokens,
    canonical,
    error_body,
    text_tokens,
)

__all__ = [
    "Plan",
    "PromptCache",
    "Segment",
    "build_message",
    "fault_plan",
    "segments",
    "sse_events",
    "stub_start",
    "validate",
]

Event = tuple[str, dict[str, Any]]

_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def validate(body: Any, *, count_only: bool = False) -> str | None:
    """Check a request body the way the real API does where it matters; None when valid.

    Returns:
        The one-line ``invalid_request_error`` message, or None.
    """
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not count_only and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens: Field required (an integer >= 1)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required (a non-empty list)"
    previous: dict[str, Any] | None = None
    for i, message in enumerate(messages):
        problem = _check_message(i, message, previous)
        if problem:
            return problem
        previous = message
    return None


def _blocks(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _ids(message: Mapping[str, Any] | None, kind: str, key: str) -> list[str]:
    if message is None:
        return []
    return [
        str(b.get(key)) for b in _blocks(message) if isinstance(b, dict) and b.get("type") == kind
    ]


def _check_message(i: int, message: Any, previous: dict[str, Any] | None) -> str | None:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    role = message["role"]
    if previous is None and role != "user":
        return 'messages: first message must use the "user" role'
    if previous is not None and previous["role"] == role:
        return f'messages.{i}: roles must alternate between "user" and "assistant"'
    content = message.get("content")
    if not isinstance(content, str) and not (
        isinstance(content, list) and all(isinstance(b, dict) and "type" in b for b in content)
    ):
        return f"messages.{i}.content: must be a string or a list of blocks with a type"
    problem = check_history(i, message)
    if problem:
        return problem
    asked = _ids(previous, "tool_use", "id") if role == "user" else []
    for tool_use_id in _ids(message, "tool_result", "tool_use_id"):
        if tool_use_id not in asked:
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
    answered = set(_ids(message, "tool_result", "tool_use_id"))
    missing = [t for t in asked if t not in answered]
    if missing:
        return (
            f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
    return None


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable unit of a prompt, in the API's prefix order: tools, system, messages."""

    key: str
    tokens: int
    ttl: str | None


def _ttl(block: Any) -> str | None:
    if isinstance(block, Mapping) and isinstance(block.get("cache_control"), Mapping):
        return str(block["cache_control"].get("ttl", "5m"))
    return None


def segments(body: Mapping[str, Any]) -> list[Segment]:
    """Split a request into prefix segments with token counts and cache breakpoints."""
    out: list[Segment] = []
    for tool in body.get("tools") or ():
        out.append(Segment("tool:" + canonical(tool), block_tokens(tool), _ttl(tool)))
    system = body.get("system")
    system_blocks = [system] if isinstance(system, str) and system else (system or [])
    for block in system_blocks:
        out.append(Segment("system:" + canonical(block), block_tokens(block), _ttl(block)))
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content
        for block in blocks:
            key = f"{message.get('role')}:{canonical(block)}"
            out.append(Segment(key, block_tokens(block), _ttl(block)))
    return out


class PromptCache:
    """Prompt-cache accounting that follows ``cache_control`` breakpoints and their TTL.

    The longest breakpoint prefix still cached (per model, not expired) is read and its TTL
    refreshed; the tokens from there up to the last breakpoint are written; the rest is plain
    input. Unlike the real API there is no minimum cacheable length.

    Args:
        now: the clock for TTLs (seconds).
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._entries: dict[tuple[str, str], tuple[float, float]] = {}

    def account(self, model: str, segs: Sequence[Segment]) -> tuple[int, int, int]:
        """Return (uncached input, cache creation, cache read) tokens and update the cache."""
        now = self._now()
        digest = hashlib.sha256()
        prefix_keys: list[str] = []
        cumulative: list[int] = []
        total = 0
        for seg in segs:
            digest.update(seg.key.encode())
            prefix_keys.append(digest.hexdigest())
            total += seg.tokens
            cumulative.append(total)
        breakpoints = [i for i, seg in enumerate(segs) if seg.ttl]
        read, hit = 0, -1
        for i in reversed(breakpoints):
            entry = self._entries.get((model, prefix_keys[i]))
            if entry and entry[0] > now:
                read, hit = cumulative[i], i
                self._entries[(model, prefix_keys[i])] = (now + entry[1], entry[1])
                break
        written = 0
        for i in breakpoints:
            if i > hit:
                seconds = _TTL_SECONDS.get(segs[i].ttl or "5m", 300.0)
                self._entries[(model, prefix_keys[i])] = (now + seconds, seconds)
                written = cumulative[i] - read
        return total - read - written, written, read


def output_tokens(content: Sequence[Mapping[str, Any]]) -> int:
    """Tokens the emulator charges for generated content."""
    return sum(block_tokens(block) for block in content) or 1


def build_message(
    reply: Reply, *, msg_id: str, model: str, counts: tuple[int, int, int], next_tool_id: Any
) -> dict[str, Any]:
    """The full Messages-API response for ``reply`` given the input token ``counts``."""
    content = []
    for block in reply.content:
        block = dict(block)
        if block.get("type") == "tool_use" and not block.get("id"):
            block["id"] = next_tool_id()
        content.append(block)
    uncached, written, read = counts
    usage: dict[str, Any] = {
        "input_tokens": uncached,
        "output_tokens": output_tokens(content),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }
    if reply.iterations:
        usage.update(_iterations_usage(reply, counts))
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model or model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _iterations_usage(reply: Reply, counts: tuple[int, int, int]) -> dict[str, Any]:
    """Fill the request's own counts into the first ``message`` iteration; sum the top level."""
    iterations: list[dict[str, Any]] = [dict(entry) for entry in reply.iterations]
    first = next((it for it in iterations if it.get("type") == "message"), None)
    if first is not None:
        first["input_tokens"] = counts[0]
        first["cache_creation_input_tokens"] = counts[1]
        first["cache_read_input_tokens"] = counts[2]
    own = [it for it in iterations if it.get("type") == "message"]
    return {
        "input_tokens": sum(int(it.get("input_tokens", 0)) for it in own),
        "output_tokens": sum(int(it.get("output_tokens", 0)) for it in own),
        "iterations": iterations,
    }


def _chunks(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def sse_events(message: Mapping[str, Any]) -> list[Event]:
    """The SSE events of a streamed ``message``, in the order the real API sends them."""
    usage = message["usage"]
    start_usage = {k: v for k, v in usage.items() if k != "iterations"}
    start_usage["output_tokens"] = 1
    start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    events.append(("ping", {"type": "ping"}))
    for index, block in enumerate(message["content"]):
        events.extend(_block_events(index, block))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: Mapping[str, Any]) -> list[Event]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    first: dict[str, Any]
    if kind == "text":
        first = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in _chunks(str(block["text"]))]
    elif kind == "tool_use":
        first = {**block, "input": {}}
        raw = json.dumps(block.get("input", {}))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _chunks(raw)]
    else:
        # Server tool blocks, advisor results and fallback blocks arrive whole.
        first = dict(block)
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": first},
        )
    ]
    for delta in deltas:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def count_input(body: Mapping[str, Any]) -> int:
    """Input tokens of a request as ``count_tokens`` reports them (no cache split)."""
    return sum(seg.tokens for seg in segments(body)) or text_tokens("")


@dataclass(slots=True)
class Plan:
    """What the HTTP handler must write for one request."""

    status: int
    body: Any = None
    message: dict[str, Any] | None = None
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: str | None = None


def fault_plan(fault: Fault, stream: bool) -> Plan:
    status = fault.http_status()
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = str(max(1, round(fault.retry_after)))
        headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
    message = fault.message or f"emulated {fault.kind} fault"
    if fault.kind in ("drop", "malformed", "sse_error"):
        return Plan(200, error_body(529, message), None, stream, headers, fault.delay, fault.kind)
    return Plan(status, error_body(status, message), None, False, headers, fault.delay, fault.kind)


def stub_start() -> dict[str, Any]:
    usage = {"input_tokens": 1, "output_tokens": 1}
    return {
        "id": "msg_emu_fault",
        "type": "message",
        "role": "assistant",
        "model": "emulator",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
