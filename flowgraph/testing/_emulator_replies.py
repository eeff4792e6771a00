"""Scripted replies, injected faults and deterministic token counts for the Messages emulator."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONSULT",
    "Fault",
    "FaultKind",
    "Reply",
    "ReplyFn",
    "ReplyLike",
    "block_tokens",
    "by_turn",
    "text_tokens",
    "to_reply",
]

Block = dict[str, Any]

# The content-block type of a consult mark: the emulator replaces it (see ``Reply.consult``).
CONSULT = "emulator_consult"

FaultKind = Literal[
    "rate_limit",  # 429 rate_limit_error, with retry-after when given
    "overloaded",  # 529 overloaded_error
    "server_error",  # 500 api_error
    "unavailable",  # 503 api_error
    "status",  # any status given in `status`
    "drop",  # the connection is cut mid-response
    "slow",  # the first byte waits `delay` seconds, then the reply is normal
    "malformed",  # a 200 whose JSON (or SSE data) is truncated
    "sse_error",  # a stream that starts, then sends `event: error` (overloaded_error)
]

_KIND_STATUS = {"rate_limit": 429, "overloaded": 529, "server_error": 500, "unavailable": 503}


def text_tokens(text: str) -> int:
    """Tokens the emulator counts for a string: ceil(len / 4), at least 1."""
    return max(1, math.ceil(len(text) / 4))


def block_tokens(block: Any) -> int:
    """Tokens of one content block, tool or system block.

    A text block counts its text; anything else counts its compact JSON with sorted keys and
    without ``cache_control`` (so adding a breakpoint never changes the count).
    """
    if isinstance(block, str):
        return text_tokens(block)
    if isinstance(block, Mapping) and block.get("type") == "text" and "text" in block:
        return text_tokens(str(block["text"]))
    return text_tokens(canonical(block))


def canonical(value: Any) -> str:
    """Compact, sorted JSON of ``value`` without ``cache_control`` keys."""
    return json.dumps(_strip_cache_control(value), sort_keys=True, separators=(",", ":"))


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted assistant message.

    Attributes:
        content: the content blocks; a ``tool_use`` block without ``id`` gets a fresh one.
        stop_reason: why the message stopped.
        iterations: ``usage.iterations`` entries to report (advisor or fallback breakdowns).
        model: the model to report as the server (defaults to the requested one).
    """

    content: tuple[Block, ...]
    stop_reason: str = "end_turn"
    iterations: tuple[Mapping[str, Any], ...] = ()
    model: str | None = None

    @classmethod
    def text(cls, text: str, *, stop_reason: str = "end_turn") -> Reply:
        """A plain text answer."""
        return cls(({"type": "text", "text": text},), stop_reason)

    @classmethod
    def tool_use(
        cls, name: str, input: Mapping[str, Any], *, id: str | None = None, text: str = ""
    ) -> Reply:
        """One client tool call (stop_reason ``tool_use``), optionally after some text."""
        return cls.tool_uses([(name, input)], text=text, ids=[id] if id else None)

    @classmethod
    def tool_uses(
        cls,
        calls: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        text: str = "",
        ids: Sequence[str] | None = None,
    ) -> Reply:
        """Several parallel client tool calls in one message."""
        blocks: list[Block] = [{"type": "text", "text": text}] if text else []
        for i, (name, args) in enumerate(calls):
            block: Block = {"type": "tool_use", "name": name, "input": dict(args)}
            if ids:
                block["id"] = ids[i]
            blocks.append(block)
        return cls(tuple(blocks), "tool_use")

    @classmethod
    def refusal(cls, text: str = "I can't help with that request.") -> Reply:
        """A policy refusal (stop_reason ``refusal``)."""
        return cls(({"type": "text", "text": text},), "refusal")

    @classmethod
    def advisor(
        cls,
        advice: str,
        *,
        before: str = "Let me check my plan.",
        after: str = "Following the advice.",
        advisor_model: str = "claude-opus-4-7",
        advisor_tokens: tuple[int, int] = (150, 60),
    ) -> Reply:
        """A canned advisor consult: server_tool_use + advisor_tool_result + usage.iterations.

        Sent as is, with or without the advisor tool in the request (``consult`` runs a real
        one). The executor's own iterations are counted from ``before`` and ``after``; the advisor's
        iteration reports ``advisor_tokens`` (input, output) at ``advisor_model``.
        """
        content = (
            {"type": "text", "text": before},
            {"type": "server_tool_use", "id": "srvtoolu_emu", "name": "advisor", "input": {}},
            {
                "type": "advisor_tool_result",
                "tool_use_id": "srvtoolu_emu",
                "content": {"type": "advisor_result", "text": advice, "stop_reason": "end_turn"},
            },
            {"type": "text", "text": after},
        )
        zero = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        iterations = (
            {"type": "message", "input_tokens": -1, "output_tokens": text_tokens(before), **zero},
            {
                "type": "advisor_message",
                "model": advisor_model,
                "input_tokens": advisor_tokens[0],
                "output_tokens": advisor_tokens[1],
                **zero,
            },
            {"type": "message", "input_tokens": 0, "output_tokens": text_tokens(after), **zero},
        )
        # input_tokens -1 is a placeholder: the emulator fills in the request's real count.
        return cls(content, "end_turn", iterations)

    @classmethod
    def consult(
        cls,
        before: str = "",
        after: str = "",
        *,
        question: str | None = None,
        redacted: bool = False,
    ) -> Reply:
        """The executor says ``before``, consults its advisor, then says ``after``.

        For a request carrying the advisor tool the emulator runs the consult with the advisor
        model's own script; without the tool the reply is ``before`` and ``after`` only.
        ``question`` is appended to the transcript the advisor reads; ``redacted`` returns an
        ``advisor_redacted_result`` instead of the advice text.
        """
        mark: Block = {"type": CONSULT, "question": question, "redacted": redacted}
        texts = [{"type": "text", "text": t} for t in (before, after)]
        return cls((texts[0], mark, texts[1]))

    @classmethod
    def consults(cls, texts: Sequence[str], *, redacted: bool = False) -> Reply:
        """Several consults in one response, between ``texts`` (n texts, n - 1 consults)."""
        if len(texts) < 2:
            raise ValueError("Reply.consults needs at least two texts (one consult)")
        blocks: list[Block] = [{"type": "text", "text": texts[0]}]
        for text in texts[1:]:
            blocks.append({"type": CONSULT, "question": None, "redacted": redacted})
            blocks.append({"type": "text", "text": text})
        return cls(tuple(blocks))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Reply:
        """Read the script-file form of a reply (see ``flowgraph.testing.emulator``)."""
        if isinstance(data, str):
            return cls.text(data)
        if "text" in data and len(data) <= 2 and "content" not in data and "tool_use" not in data:
            return cls.text(str(data["text"]), stop_reason=str(data.get("stop_reason", "end_turn")))
        if "tool_use" in data:
            calls = data["tool_use"]
            calls = calls if isinstance(calls, list) else [calls]
            ids = [c["id"] for c in calls] if all("id" in c for c in calls) else None
            pairs = [(str(c["name"]), dict(c.get("input", {}))) for c in calls]
            return cls.tool_uses(pairs, text=str(data.get("text", "")), ids=ids)
        if "refusal" in data:
            return cls.refusal(str(data["refusal"]))
        if "advisor" in data:
            return cls.advisor(str(data["advisor"]))
        if "consult" in data:
            options = data["consult"]
            options = options if isinstance(options, Mapping) else {"before": str(options)}
            return cls.consult(
                str(options.get("before", "")),
                str(options.get("after", "")),
                question=options.get("question"),
                redacted=bool(options.get("redacted", False)),
            )
        if "consults" in data:
            return cls.consults([str(t) for t in data["consults"]])
        if "content" in data:
            return cls(
                tuple(dict(b) for b in data["content"]),
                str(data.get("stop_reason", "end_turn")),
                tuple(dict(i) for i in data.get("iterations", ())),
                data.get("model"),
            )
        raise ValueError(
            f"emulator reply {dict(data)!r} is not a reply; use text, tool_use, refusal, "
            "advisor, consult, consults or content"
        )


ReplyLike = Reply | str | Mapping[str, Any]
ReplyFn = Callable[[dict[str, Any]], ReplyLike]


def to_reply(value: ReplyLike) -> Reply:
    """Normalize a script entry to a ``Reply``."""
    return value if isinstance(value, Reply) else Reply.from_json(value)


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure to inject instead of (or around) a scripted reply.

    A faulted call that fails consumes no scripted reply and bills nothing, so the retry gets
    the reply the script meant for that turn; ``slow`` is the only kind that still answers.

    Attributes:
        kind: what goes wrong (see ``FaultKind``).
        model: the model id it applies to; None for every model.
        call: the 0-based index of the request to that model (counted per model, over valid
            ``/v1/messages`` requests); None for every call.
        status: the HTTP status for ``kind="status"`` (overrides the kind's default otherwise).
        retry_after: seconds to send in ``retry-after`` / ``retry-after-ms`` headers.
        delay: seconds before the first byte (``slow``; adds to others too).
        message: the error message to send; a default names the fault.
    """

    kind: FaultKind
    model: str | None = None
    call: int | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    message: str = ""

    def matches(self, model: str, index: int) -> bool:
        """Whether this fault applies to request number ``index`` for ``model``."""
        return (self.model is None or self.model == model) and (
            self.call is None or self.call == index
        )

    def http_status(self) -> int:
        """The status code this fault answers with (200 for stream-level faults)."""
        if self.status is not None:
            return self.status
        return _KIND_STATUS.get(self.kind, 200)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Read the script-file form: ``{"kind": ..., "model": ..., "call": ..., ...}``."""
        known = {"kind", "model", "call", "status", "retry_after", "delay", "message"}
        unknown = set(data) - known
        if unknown or "kind" not in data:
            raise ValueError(f"emulator fault {dict(data)!r} needs kind and only {sorted(known)}")
        return cls(**{k: data[k] for k in known if k in data})


def error_type(status: int) -> str:
    """The Messages-API error type for an HTTP status."""
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    """A real Messages-API error body."""
    return {"type": "error", "error": {"type": kind or error_type(status), "message": message}}


def by_turn(script: Any) -> Any:
    """``{"by_turn": [r1, r2, ...]}``: reply k to the k-th request of each conversation (the
    last one repeats), so many multi-turn conversations can share one script file."""
    if not (isinstance(script, Mapping) and "by_turn" in script):
        return script
    replies = [to_reply(r) for r in script["by_turn"]]

    def pick(body: dict[str, Any]) -> Reply:
        turn = sum(1 for m in body.get("messages", ()) if m.get("role") == "assistant")
        return replies[min(turn, len(replies) - 1)]

    return pick
