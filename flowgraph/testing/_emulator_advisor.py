"""The emulator's advisor tool (beta ``advisor-tool-2026-03-01``): validation and the consult.

A ``Reply.consult`` marks where the executor consults its advisor. For a request that carries
the ``advisor_20260301`` tool, ``expand`` turns each mark into the real API's blocks
(``server_tool_use`` then ``advisor_tool_result``) and ``usage.iterations`` (executor
``message`` parts around each ``advisor_message``), asking the emulator for the advice.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowgraph.testing._emulator_replies import (
    CONSULT,
    Block,
    Fault,
    Reply,
    block_tokens,
    canonical,
    text_tokens,
)

__all__ = [
    "ADVISOR_BETA",
    "ADVISOR_TYPE",
    "DEFAULT_ADVICE",
    "Advice",
    "advisor_tool",
    "check_history",
    "check_tools",
    "error_code",
    "expand",
    "without_consults",
]

ADVISOR_TYPE = "advisor_20260301"
ADVISOR_BETA = "advisor-tool-2026-03-01"
DEFAULT_ADVICE = (
    "Your plan is sound. Keep the change small, cover it with a test, and run the test suite "
    "before you declare the task done."
)
ADVISOR_SYSTEM = (
    "You are the advisor of another model (the executor). Read its transcript and give brief, "
    "concrete advice on how to proceed."
)
DEFAULT_ADVISOR_MAX_TOKENS = 4096
_TRUNCATION_NOTE = "\n\n[advice truncated at the advisor's max_tokens]"
_ERROR_OF_STATUS = {429: "too_many_requests", 529: "overloaded", 400: "prompt_too_long"}
_ERROR_CODES = {
    "max_uses_exceeded",
    "prompt_too_long",
    "too_many_requests",
    "overloaded",
    "unavailable",
    "execution_time_exceeded",
    "model_not_found",
}
_ZERO_CACHE = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


@dataclass(frozen=True, slots=True)
class Advice:
    """What the advisor's script answered for one consult, or why it failed.

    Attributes:
        reply: the advisor model's scripted reply; None when the consult failed.
        error: the ``advisor_tool_result_error`` code when it failed.
    """

    reply: Reply | None = None
    error: str | None = None


Consult = Callable[[str, dict[str, Any]], Advice]


def advisor_tool(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request's ``advisor_20260301`` tool param, if it carries one."""
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and tool.get("type") == ADVISOR_TYPE:
            return tool
    return None


def _betas(headers: Mapping[str, str]) -> set[str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return {b.strip() for b in lowered.get("anthropic-beta", "").split(",") if b.strip()}


def check_tools(body: Mapping[str, Any], headers: Mapping[str, str], supported: bool) -> str | None:
    """The 400 message for a request's advisor tool param (unsupported, no beta, bad fields)."""
    for i, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict) or tool.get("type") != ADVISOR_TYPE:
            continue
        if not supported:
            return f"tools.{i}: unknown tool type '{ADVISOR_TYPE}'"
        if ADVISOR_BETA not in _betas(headers):
            return (
                f"tools.{i}: the '{ADVISOR_TYPE}' tool requires the beta header "
                f"`anthropic-beta: {ADVISOR_BETA}`"
            )
        if tool.get("name") != "advisor":
            return f"tools.{i}.name: Input should be 'advisor'"
        if not isinstance(tool.get("model"), str) or not tool["model"]:
            return f"tools.{i}.model: Field required"
        for key in ("max_uses", "max_tokens"):
            value = tool.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                return f"tools.{i}.{key}: Input should be an integer >= 1"
    return None


def check_history(i: int, message: Mapping[str, Any]) -> str | None:
    """The 400 message when an advisor result does not directly follow its ``server_tool_use``.

    In an assistant message each ``advisor_tool_result`` must come right after the
    ``server_tool_use`` (name ``advisor``) with the same id, and that call must have its result.
    """
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        before = blocks[j - 1] if j > 0 else {}
        after = blocks[j + 1] if j + 1 < len(blocks) else {}
        if kind == "advisor_tool_result":
            use_id = block.get("tool_use_id")
            if message.get("role") != "assistant" or not (
                before.get("type") == "server_tool_use"
                and before.get("name") == "advisor"
                and before.get("id") == use_id
            ):
                return (
                    f"messages.{i}.content.{j}: `advisor_tool_result` block with tool_use_id "
                    f"{use_id} must immediately follow the `server_tool_use` block with the "
                    "same id in the same assistant message"
                )
        elif kind == "server_tool_use" and block.get("name") == "advisor":
            answered = after.get("type") == "advisor_tool_result"
            if not answered or after.get("tool_use_id") != block.get("id"):
                return (
                    f"messages.{i}.content.{j}: `server_tool_use` block {block.get('id')} "
                    "(advisor) must be immediately followed by its `advisor_tool_result` block"
                )
    return None


def error_code(fault: Fault) -> str:
    """The ``advisor_tool_result_error`` code a fault on the advisor model turns into.

    A fault whose ``message`` is an error code uses it; otherwise 429 is ``too_many_requests``,
    529 ``overloaded``, 400 ``prompt_too_long`` and anything else ``unavailable``.
    """
    if fault.message in _ERROR_CODES:
        return fault.message
    return _ERROR_OF_STATUS.get(fault.http_status(), "unavailable")


def without_consults(reply: Reply) -> Reply:
    """``reply`` for a request without the advisor tool: its text only, the marks dropped."""
    kept = tuple(b for b in reply.content if b.get("type") != CONSULT and not _empty_text(b))
    return Reply(kept, reply.stop_reason, reply.iterations, reply.model)


def _empty_text(block: Mapping[str, Any]) -> bool:
    return block.get("type") == "text" and not block.get("text")


def _render(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        is_text = isinstance(block, Mapping) and block.get("type") == "text"
        parts.append(str(block.get("text", "")) if is_text else canonical(block))
    return "\n".join(parts)


def transcript(body: Mapping[str, Any], partial: Sequence[Block], question: str | None) -> str:
    """The executor's conversation so far as the text the advisor reads."""
    lines = []
    if body.get("system"):
        lines.append(f"[system]\n{_render(body['system'])}")
    for message in body.get("messages") or ():
        lines.append(f"[{message.get('role')}]\n{_render(message.get('content'))}")
    if partial:
        lines.append(f"[assistant]\n{_render(partial)}")
    if question:
        lines.append(f"[question for the advisor]\n{question}")
    return "\n\n".join(lines)


def advisor_request(
    body: Mapping[str, Any], tool: Mapping[str, Any], partial: Sequence[Block], question: str | None
) -> dict[str, Any]:
    """The synthetic request the advisor model's script receives."""
    return {
        "model": str(tool["model"]),
        "system": ADVISOR_SYSTEM,
        "messages": [{"role": "user", "content": transcript(body, partial, question)}],
        "max_tokens": int(tool.get("max_tokens") or DEFAULT_ADVISOR_MAX_TOKENS),
    }


def _result_content(reply: Reply, max_tokens: int, redacted: bool) -> tuple[dict[str, Any], int]:
    """The ``advisor_result`` (or redacted) content and the advice's output tokens."""
    advice = "".join(str(b.get("text", "")) for b in reply.content if b.get("type") == "text")
    stop_reason = reply.stop_reason
    if text_tokens(advice) > max_tokens:
        advice, stop_reason = advice[: max_tokens * 4], "max_tokens"
    tokens = text_tokens(advice)
    if stop_reason == "max_tokens":
        advice += _TRUNCATION_NOTE
    if redacted:
        blob = base64.b64encode(b"emu1" + zlib.compress(advice.encode())).decode()
        content = {"type": "advisor_redacted_result", "encrypted_content": blob}
        return {**content, "stop_reason": stop_reason}, tokens
    return {"type": "advisor_result", "text": advice, "stop_reason": stop_reason}, tokens


def _executor(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "type": "message",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        **_ZERO_CACHE,
    }


def expand(
    reply: Reply,
    body: Mapping[str, Any],
    tool: Mapping[str, Any],
    *,
    consult: Consult,
    new_id: Callable[[str], str],
    redact: bool = False,
) -> Reply:
    """Run each consult of ``reply`` and return the message the real API would send.

    Each executor ``message`` iteration outputs the blocks it generated (text, tool calls,
    ``server_tool_use``); the first reads the request (the emulator fills in its counts), each
    later one reads the ``advisor_tool_result`` before it. A consult past the tool's
    ``max_uses`` (counted within this response) or one whose advisor fails gets an
    ``advisor_tool_result_error`` and no ``advisor_message`` iteration.
    """
    model = str(tool["model"])
    max_uses = tool.get("max_uses")
    max_tokens = int(tool.get("max_tokens") or DEFAULT_ADVISOR_MAX_TOKENS)
    content: list[Block] = []
    iterations: list[dict[str, Any]] = []
    read, wrote, uses = -1, 0, 0  # -1: the request's own input, filled in by build_message
    for mark in reply.content:
        if mark.get("type") != CONSULT:
            if not _empty_text(mark):
                block = dict(mark)
                if block.get("type") == "tool_use" and not block.get("id"):
                    block["id"] = new_id("toolu")
                content.append(block)
                wrote += block_tokens(block)
            continue
        use_id = new_id("srvtoolu")
        call = {"type": "server_tool_use", "id": use_id, "name": "advisor", "input": {}}
        iterations.append(_executor(read, wrote + block_tokens(call)))
        uses += 1
        advisor_entry: dict[str, Any] | None = None
        result: dict[str, Any]
        if max_uses is not None and uses > int(max_uses):
            result = {"type": "advisor_tool_result_error", "error_code": "max_uses_exceeded"}
        else:
            request = advisor_request(body, tool, content, mark.get("question"))
            advice = consult(model, request)
            if advice.reply is None:
                result = {"type": "advisor_tool_result_error", "error_code": advice.error}
            else:
                redacted = redact or bool(mark.get("redacted"))
                result, out = _result_content(advice.reply, max_tokens, redacted)
                seen = block_tokens(request["system"]) + block_tokens(
                    request["messages"][0]["content"]
                )
                advisor_entry = {
                    "type": "advisor_message",
                    "model": model,
                    "input_tokens": seen,
                    "output_tokens": out,
                    **_ZERO_CACHE,
                }
        answer = {"type": "advisor_tool_result", "tool_use_id": use_id, "content": result}
        content += [call, answer]
        if advisor_entry is not None:
            iterations.append(advisor_entry)
        read, wrote = block_tokens(answer), 0
    iterations.append(_executor(read, wrote))
    return Reply(tuple(content), reply.stop_reason, tuple(iterations), reply.model)
