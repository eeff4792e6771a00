"""A Messages-API emulator: a real HTTP/1.1 server on 127.0.0.1 for the real ``anthropic`` SDK.

Point any client at ``emu.base_url`` and it answers ``POST /v1/messages`` (JSON and SSE streaming,
exactly as the SDK parses them) and ``POST /v1/messages/count_tokens`` from a script, with
deterministic token counts, prompt-cache accounting and injected faults. It runs in a background
thread, so it works from sync and async tests alike::

    from flowgraph.testing.emulator import Emulator, Fault, Reply

    with Emulator() as emu:
        emu.script("claude-sonnet-4-6", [Reply.tool_use("read", {"path": "a.py"}), "Done."])
        emu.fault("overloaded", model="claude-opus-4-7", call=0)
        client = anthropic.AsyncAnthropic(api_key="test", base_url=emu.base_url)
        ...
        assert emu.requests[0].model == "claude-sonnet-4-6"
        assert emu.billed["claude-sonnet-4-6"].output_tokens == 12

Scripts. Per model id, a sequence of replies consumed in order (a ``Reply``, a plain string for
a text reply, or the JSON form below) or a function ``body -> reply``. A model with no script, or
whose script is used up, answers ``"ok"``.

The advisor (tool ``{"type": "advisor_20260301", "name": "advisor", "model": M, "max_uses": k?,
"max_tokens": t?}``, beta header ``advisor-tool-2026-03-01``). ``Reply.consult(before, after,
question=None, redacted=False)`` marks a consult (``Reply.consults([t0, t1, ...])``: one between
each two texts). For a request carrying the tool the emulator runs each consult itself: it calls
M's own script with a synthetic request ``{"model": M, "system": <advisor prompt>, "messages":
[{"role": "user", "content": <the executor's transcript so far as text, plus the question>}],
"max_tokens": t or 4096}`` (no script, or used up: a default advice) and answers ``text``,
``server_tool_use`` (id ``srvtoolu_emu_…``), ``advisor_tool_result`` (``advisor_result`` with
the advice and its stop_reason; ``max_tokens`` and truncated when the advice exceeds t), ``text``.
``usage.iterations`` is an executor ``message`` per part (the first reads the request, a later one
reads the result before it; each outputs the blocks it generated, ``server_tool_use`` included)
with an ``advisor_message`` at M between them (input: the transcript request, output: the
advice); the top level sums the ``message`` entries, and ``emu.billed`` charges the advisor's
entry to M. A consult past ``max_uses`` (counted per response) gets ``advisor_tool_result_error``
``max_uses_exceeded``; a fault on M (consults count as M's calls) gets the error code of its kind
(``overloaded``, 429 ``too_many_requests``, else ``unavailable``, or the fault's ``message`` when
that is a code) while the request still succeeds; neither has an ``advisor_message`` entry.
``redacted=True`` (or ``Emulator(redact_advice=True)``) answers ``advisor_redacted_result`` with an
opaque base64 ``encrypted_content``. Without the tool a consult reply is its texts only.
``Reply.advisor(advice)`` is a canned consult sent as is, whatever the request.

Token counts. A text block counts ceil(len(text) / 4); any other block, tool or message counts
ceil(len(compact sorted JSON) / 4), each at least 1. Input is the sum over tools, system blocks
and message blocks; output is the sum over the reply's blocks.

Prompt cache. A ``cache_control`` breakpoint (``ttl`` "5m" or "1h") caches the prefix up to it,
per model. The longest cached prefix still within its TTL is read (``cache_read_input_tokens``)
and its TTL refreshed; up to the last breakpoint the rest is written
(``cache_creation_input_tokens``); what follows is ``input_tokens``. No minimum length.

Faults (``Fault``): per model (or all) and per call index (0-based, counted per model over
valid requests; or every call): ``rate_limit`` (429, ``retry-after`` and ``retry-after-ms``
headers when ``retry_after`` is set), ``overloaded`` (529), ``server_error`` (500),
``unavailable`` (503), ``status`` (any ``status``), ``drop`` (connection cut mid-response),
``slow`` (first byte after ``delay``), ``malformed`` (truncated JSON or SSE data), ``sse_error``
(a stream that starts, then sends ``event: error``). A failing fault consumes no reply and bills
nothing. ``latency`` delays every response.

Records. ``emu.requests`` logs every request (path, model, body, headers with the auth headers
redacted, status, fault, and for an answered message its ``response_id`` and billed ``usage``);
``emu.billed`` sums the tokens charged per model, iterations entries (advisor, fallback) under
their own model; ``emu.peak_in_flight`` holds, per model, the most requests that were in flight
at once (received, response not yet fully written).

Validation, answered with a real 400 ``invalid_request_error`` body: model, max_tokens and
messages are required; roles alternate starting with user; each ``tool_result`` answers a
``tool_use`` of the previous assistant turn and each ``tool_use`` is answered in the next turn;
each ``advisor_tool_result`` directly follows its advisor ``server_tool_use`` (same id, same
assistant message) and each such call has its result; the advisor tool needs its beta header,
and with ``Emulator(advisor_tool=False)`` (or ``emu.advisor_tool = False``) a request carrying it
gets ``tools.<i>: unknown tool type 'advisor_20260301'``. With ``api_key`` set, any other key
gets a 401.

Script file for ``python -m flowgraph.testing.emulator --port 8765 --script demo.json`` (a model's
entry may also be ``{"by_turn": [reply, ...]}``: reply k answers the k-th request of every
conversation, for many multi-turn conversations at once)::

    {"models": {"claude-sonnet-4-6": [
        {"tool_use": {"name": "read", "input": {"path": "a.py"}}, "text": "Reading."},
        {"text": "Done."},
        {"refusal": "No."},
        {"advisor": "Use a binary search."},
        {"consult": {"before": "Let me check.", "after": "Done.", "question": null,
                     "redacted": false}},
        {"consults": ["Plan.", "Halfway.", "Done."]},
        {"content": [{"type": "text", "text": "raw"}], "stop_reason": "max_tokens"}],
                "claude-opus-4-7": ["Use a binary search."]},
     "faults": [{"kind": "overloaded", "model": "claude-opus-4-7", "call": 0},
                {"kind": "rate_limit", "retry_after": 2, "call": 1}],
     "latency": 0.0, "advisor_tool": true, "redact_advice": false}
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from flowgraph.models.seam import Usage
from flowgraph.testing._emulator_advisor import (
    DEFAULT_ADVICE,
    Advice,
    advisor_tool,
    check_tools,
    error_code,
    expand,
    without_consults,
)
from flowgraph.testing._emulator_core import (
    Plan,
    PromptCache,
    build_message,
    count_input,
    fault_plan,
    segments,
    validate,
)
from flowgraph.testing._emulator_http import Server, serve
from flowgraph.testing._emulator_replies import (
    CONSULT,
    Fault,
    FaultKind,
    Reply,
    ReplyFn,
    ReplyLike,
    by_turn,
    error_body,
    to_reply,
)

__all__ = ["Emulator", "Fault", "FaultKind", "LoggedRequest", "Reply", "ReplyFn", "ReplyLike"]

_REDACTED = "[REDACTED]"
_SECRET_HEADERS = {"x-api-key", "authorization", "proxy-authorization"}


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the emulator received (header names lower-cased, auth values redacted)."""

    path: str
    model: str
    body: Any
    headers: Mapping[str, str]
    status: int
    stream: bool = False
    fault: str | None = None
    response_id: str | None = None  # the message answered (``msg_emu_…``), when one was
    usage: Mapping[str, Any] | None = None  # what that message was billed


class Emulator:
    """The Messages-API emulator (see the module docstring).

    Args:
        script: per model id, replies in order or a function of the request body.
        faults: faults to inject, checked in order; the first match wins.
        latency: seconds every response waits before its first byte.
        api_key: when set, the only key accepted (others get 401); else any key is accepted.
        port: the port to listen on; 0 picks a free one.
        now: the clock for cache TTLs (tests can pass a fake).
        advisor_tool: whether the ``advisor_20260301`` tool is supported; when False a request
            carrying it gets a 400 naming the tool type (also settable as ``emu.advisor_tool``).
        redact_advice: answer every consult with an ``advisor_redacted_result`` (also settable
            as ``emu.redact_advice``).
    """

    def __init__(
        self,
        script: Mapping[str, Sequence[ReplyLike] | ReplyFn] | None = None,
        *,
        faults: Sequence[Fault] = (),
        latency: float = 0.0,
        api_key: str | None = None,
        port: int = 0,
        now: Callable[[], float] = time.monotonic,
        advisor_tool: bool = True,
        redact_advice: bool = False,
    ) -> None:
        self.latency = latency
        self.advisor_tool = advisor_tool
        self.redact_advice = redact_advice
        self._api_key = api_key
        self._port = port
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply] | ReplyFn] = {}
        self._positions: dict[str, int] = {}
        self._calls: dict[str, int] = {}
        self._faults: list[Fault] = list(faults)
        self._cache = PromptCache(now)
        self._ids = itertools.count(1)
        self.requests: list[LoggedRequest] = []
        self.billed: dict[str, Usage] = {}
        self.peak_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._model_of: dict[int, str] = {}
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        for model, replies in (script or {}).items():
            self.script(model, replies)

    # -- scripting -------------------------------------------------------------------------

    def script(self, model: str, replies: Sequence[ReplyLike] | ReplyFn) -> None:
        """Set (replace) the script of ``model``: replies in order, or a function of the body."""
        with self._lock:
            if callable(replies):
                self._scripts[model] = replies
            else:
                self._scripts[model] = [to_reply(r) for r in replies]
            self._positions[model] = 0

    def fault(
        self, kind: FaultKind, *, model: str | None = None, call: int | None = None, **options: Any
    ) -> Fault:
        """Add a fault (``status``, ``retry_after``, ``delay``, ``message`` as options)."""
        fault = Fault(kind, model, call, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Emulator:
        """Build an emulator from a JSON script file (format in the module docstring)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        faults = [Fault.from_json(f) for f in data.get("faults", ())]
        kwargs.setdefault("latency", float(data.get("latency", 0.0)))
        kwargs.setdefault("advisor_tool", bool(data.get("advisor_tool", True)))
        kwargs.setdefault("redact_advice", bool(data.get("redact_advice", False)))
        models = {m: by_turn(v) for m, v in data.get("models", {}).items()}
        return cls(models, faults=faults, **kwargs)

    def calls(self, model: str) -> int:
        """How many valid ``/v1/messages`` requests ``model`` received."""
        with self._lock:
            return self._calls.get(model, 0)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, for the SDK's ``base_url``."""
        if self._server is None:
            raise RuntimeError("Emulator is not running; use `with Emulator() as emu:` or start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        """Start serving in a daemon thread."""
        server = self._server = serve(self, self._port)
        # A short poll interval makes stop() take milliseconds instead of half a second.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="fg-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- request handling (called from handler threads) -------------------------------------

    def plan(self, path: str, raw: bytes, headers: Mapping[str, str]) -> Plan:
        """Decide the response to one request and record it."""
        body: Any = None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            plan = Plan(400, error_body(400, "request body is not valid JSON"))
        else:
            plan = self._decide(path, body, headers)
        model = body.get("model", "") if isinstance(body, dict) else ""
        redacted = {
            k.lower(): (_REDACTED if k.lower() in _SECRET_HEADERS else v)
            for k, v in headers.items()
        }
        message = plan.message if plan.stream else plan.body
        if not (path == "/v1/messages" and plan.status == 200 and isinstance(message, dict)):
            message = {}  # not an answered message: nothing billed
        entry = LoggedRequest(
            path, str(model), body, redacted, plan.status, plan.stream, plan.fault,
            message.get("id"), message.get("usage"),
        )  # fmt: skip
        with self._lock:
            self.requests.append(entry)
            now = self._in_flight[entry.model] = self._in_flight.get(entry.model, 0) + 1
            self.peak_in_flight[entry.model] = max(now, self.peak_in_flight.get(entry.model, 0))
            self._model_of[id(plan)] = entry.model
        plan.delay += self.latency
        return plan

    def done(self, plan: Plan) -> None:
        """The response to ``plan`` is written: one request of its model fewer in flight."""
        with self._lock:
            model = self._model_of.pop(id(plan), None)
            if model is not None:
                self._in_flight[model] -= 1

    def _decide(self, path: str, body: Any, headers: Mapping[str, str]) -> Plan:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get("x-api-key") or lowered.get("authorization", "").removeprefix("Bearer ")
        if not given or (self._api_key is not None and given != self._api_key):
            return Plan(401, error_body(401, "invalid x-api-key"))
        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return Plan(404, error_body(404, f"Not found: {path}"))
        count_only = path.endswith("count_tokens")
        problem = validate(body, count_only=count_only) or check_tools(
            body, headers, self.advisor_tool
        )
        if problem:
            return Plan(400, error_body(400, problem))
        if count_only:
            return Plan(200, {"input_tokens": count_input(body)})
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> Plan:
        model = str(body["model"])
        stream = bool(body.get("stream"))
        with self._lock:
            index = self._calls.get(model, 0)
            self._calls[model] = index + 1
            fault = next((f for f in self._faults if f.matches(model, index)), None)
        if fault is not None and fault.kind not in ("slow",):
            return fault_plan(fault, stream)
        reply = self._next_reply(model, body)
        if any(block.get("type") == CONSULT for block in reply.content):
            tool = advisor_tool(body)
            if tool is None:
                reply = without_consults(reply)
            else:
                reply = expand(
                    reply,
                    body,
                    tool,
                    consult=self._consult,
                    new_id=lambda prefix: f"{prefix}_emu_{next(self._ids):04d}",
                    redact=self.redact_advice,
                )
        with self._lock:
            counts = self._cache.account(model, segments(body))
            message = build_message(
                reply,
                msg_id=f"msg_emu_{next(self._ids):04d}",
                model=model,
                counts=counts,
                next_tool_id=lambda: f"toolu_emu_{next(self._ids):04d}",
            )
            self._bill(model, message["usage"])
        delay, kind = (fault.delay, fault.kind) if fault else (0.0, None)
        if stream:
            return Plan(200, None, message, True, delay=delay, fault=kind)
        return Plan(200, message, delay=delay, fault=kind)

    def _consult(self, model: str, request: dict[str, Any]) -> Advice:
        """One consult of the advisor ``model``: a call of that model (faults apply)."""
        with self._lock:
            index = self._calls.get(model, 0)
            self._calls[model] = index + 1
            fault = next((f for f in self._faults if f.matches(model, index)), None)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.kind != "slow":
                return Advice(error=error_code(fault))
        return Advice(self._next_reply(model, request, default=DEFAULT_ADVICE))

    def _next_reply(self, model: str, body: dict[str, Any], default: str = "ok") -> Reply:
        with self._lock:
            script = self._scripts.get(model)
            if callable(script):
                function = script
            else:
                position = self._positions.get(model, 0)
                self._positions[model] = position + 1
                replies = script or []
                return replies[position] if position < len(replies) else Reply.text(default)
        # A script function runs outside the lock: it may be slow or call back into the emulator.
        return to_reply(function(body))

    def _bill(self, model: str, usage: Mapping[str, Any]) -> None:
        parts = usage.get("iterations") or [usage]
        for part in parts:
            served = str(part.get("model") or model)
            charged = Usage.from_dict({k: v for k, v in part.items() if k != "iterations"})
            self.billed[served] = self.billed.get(served, Usage()) + charged


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator from the command line until interrupted."""
    parser = argparse.ArgumentParser(description="Messages-API emulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--script", type=Path, help="JSON script file (see module docstring)")
    parser.add_argument("--latency", type=float, default=None, help="seconds per response")
    parser.add_argument("--api-key", default=None, help="accept only this key")
    parser.add_argument(
        "--no-advisor-tool", action="store_true", help="answer the advisor tool with a 400"
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"port": args.port, "api_key": args.api_key}
    if args.no_advisor_tool:
        options["advisor_tool"] = False
    if args.latency is not None:
        options["latency"] = args.latency
    emu = Emulator.from_file(args.script, **options) if args.script else Emulator(**options)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emu:
        print(f"flowgraph emulator listening on {emu.base_url}", flush=True)
        # Wake up now and then: a signal handler runs only when the main thread does.
        while not stop.wait(0.2):
            pass


if __name__ == "__main__":
    main()
