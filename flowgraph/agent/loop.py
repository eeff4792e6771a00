"""The role runtime: one node's agent tool loop behind the ``Model`` seam.

Each role node has its own conversation (context isolation): instructions as the system prompt,
the rendered task plus upstream outputs as the first user message. The loop calls the model,
runs the tools it asks for (a failing tool becomes an error result the model reads, never a crash),
and ends when the model ends its turn, then validates a structured output, sending validation
errors back a bounded number of times. Only the final output leaves the node.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from flowgraph.agent.approvals import Approvals
from flowgraph.agent.blocks import tool_result
from flowgraph.agent.consults import REVIEW_PROMPT, AdvisorSession, says_stop
from flowgraph.agent.native_trace import TOOL_NAME, refuses_native
from flowgraph.agent.turns import turn_meta
from flowgraph.declare import templates
from flowgraph.declare.context import Context
from flowgraph.declare.nodes import RoleNode
from flowgraph.errors import ModelError, NodeError
from flowgraph.events import Event, ModelTurn, ToolCalled
from flowgraph.models.router import Served
from flowgraph.models.seam import ModelRequest

__all__ = ["NodeReport", "render_task", "run_role", "steering_blocks"]


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
    advisor: AdvisorSession | None = None
    # The turn-level journal: the deltas a crashed attempt recorded (replayed on resume), and
    # where each new delta goes the moment it happens.
    replay: list[dict[str, Any]] = field(default_factory=list)
    note: Callable[[dict[str, Any]], None] | None = None
    # Where an attempt that starts at turn 1 sends its first message (the task as the model
    # reads it): the head of its transcript, which resume never needs (it renders the task).
    begin: Callable[[str], None] | None = None


def steering_blocks(texts: Sequence[str]) -> list[dict[str, Any]]:
    """How steering messages from a person read in the conversation the model sees."""
    return [{"type": "text", "text": f"New instruction from a person: {t}"} for t in texts]


def render_task(template: str, ctx: Context) -> str:
    """Fill a task template from the run input and upstream outputs."""
    values = {**ctx.input, **ctx.outputs, **ctx.vars}
    try:
        return templates.render(template, values)
    except (KeyError, AttributeError, TypeError, IndexError) as exc:
        raise NodeError(
            f"node {ctx.node!r}: its task template could not be filled ({type(exc).__name__}: "
            f"{exc}); check the field names against the upstream outputs"
        ) from None


def _first_message(node: RoleNode, ctx: Context) -> str:
    text = render_task(node.task, ctx)
    used = templates.roots(node.task)
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
    advisor: AdvisorSession | None = None,
    steering: Callable[[int], list[str]] | None = None,
    extra_tools: Sequence[Any] = (),
    approvals: Approvals | None = None,
) -> Any:
    """Run ``node``'s tool loop to the end and return its (validated, checked) output.

    ``steering(turn)`` returns messages a person sent the node since its last turn; each goes
    into the conversation as a new instruction before the next model turn. ``extra_tools``
    are tools listed at run time (an MCP server's), called like the role's own.
    """
    loop = _Loop(node, ctx, call, report, emit, advisor)
    loop.steering = steering
    loop.tools.update({t.name: t for t in extra_tools})  # e.g. MCP servers' tools
    loop.approvals = approvals
    return await loop.run()


class _Loop:
    """The state of one node's tool loop: its conversation, tools and advisor."""

    def __init__(
        self,
        node: RoleNode,
        ctx: Context,
        call: Caller,
        report: NodeReport,
        emit: Callable[[Event], None],
        advisor: AdvisorSession | None,
    ) -> None:
        self.node, self.ctx, self.call, self.report, self.emit = node, ctx, call, report, emit
        self.advisor = advisor
        self.role = node.role
        self.tools = {t.name: t for t in self.role.tool_list}
        self.system = self.role.instructions + (advisor.guidance() if advisor else "")
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": _first_message(node, ctx)}
        ]
        self.fixes_left = self.role.output_retries
        self.turn = 0
        self.steering: Callable[[int], list[str]] | None = None
        self.approvals: Approvals | None = None

    def _note(self, delta: dict[str, Any]) -> None:
        """Journal one step of the conversation as it completes (a delta, never the request)."""
        if self.report.note is not None:
            self.report.note(delta)

    async def run(self) -> Any:
        if self.approvals and self.approvals.resuming:
            first = await self._resume_approved()
        elif self.report.replay:
            done, output = await self._resume_recorded(self.report.replay)
            if done:
                return output
            first = self.turn + 1
        else:
            first = 1
            if self.report.begin is not None:
                self.report.begin(self.messages[0]["content"])
        for turn in range(first, self.role.max_turns + 1):
            self.turn = turn
            self._take_steering()
            response, meta = await self._ask()
            content = list(response.content)
            self.messages.append({"role": "assistant", "content": content})
            if meta is not None:  # journaled: the turn, its answer and how it was served
                self._note({"k": "a", "turn": turn, "content": content,
                            "stop": response.stop_reason, "served": self.report.served[-1],
                            "meta": meta})  # fmt: skip
            if response.stop_reason == "refusal":
                raise NodeError(f"node {self.node.name!r}: the model refused the task")
            if response.tool_uses:
                await self._run_tools(response.tool_uses)
                continue
            if response.stop_reason == "pause_turn":
                continue
            done, output = await self._finish(response.text)
            if done:
                return output
        raise NodeError(
            f"node {self.node.name!r} used all {self.role.max_turns} turns without finishing; "
            "raise Role(max_turns=...) or narrow the task"
        )

    async def _resume_approved(self) -> int:
        """Carry on from calls a person decided on: the saved conversation, then the calls
        (run if approved, an error result with the note if rejected). The next turn's number."""
        assert self.approvals is not None
        pending = self.approvals.pending
        if not self.approvals.resuming or pending is None:
            return 1
        self.messages[:] = pending["messages"]
        self.turn = self.report.turns = int(pending["turn"])
        uses = [b for b in self.messages[-1]["content"] if b.get("type") == "tool_use"]
        await self._run_tools(uses)
        return self.turn + 1

    async def _resume_recorded(self, deltas: list[dict[str, Any]]) -> tuple[bool, Any]:
        """Rebuild the conversation a crashed attempt recorded, without calling the model or
        the tools again, and carry on where it stopped: the tool calls of the last turn that
        have no recorded result, or the final answer it had not finished checking."""
        results: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        report = self.report
        for delta in deltas:
            kind = delta["k"]
            if kind == "s":
                self._steer(delta["texts"])
            elif kind == "r":
                results.append(delta["block"])
                report.tool_calls += delta["block"].get("type") == "tool_result"
            else:
                if results:
                    self.messages.append({"role": "user", "content": results})
                    results = []
                if kind == "a":
                    last = delta
                    self.turn = report.turns = int(delta["turn"])
                    self.messages.append({"role": "assistant", "content": delta["content"]})
                    report.served.append(delta["served"])
                    report.model = delta["served"].get("model")
                else:  # "u": feedback on an answer, or an advisor's review
                    last = None
                    self.messages.append({"role": "user", "content": delta["content"]})
                    self.fixes_left -= delta.get("why") == "fix"
                    if delta.get("why") == "review" and self.advisor:
                        self.advisor.final_review_done = True
        if last is None:
            if results:
                self.messages.append({"role": "user", "content": results})
            return False, None
        uses = [b for b in last["content"] if b.get("type") == "tool_use"]
        if uses:
            done = {b.get("tool_use_id") for b in results}
            await self._run_tools([u for u in uses if u["id"] not in done], results)
            return False, None
        if results or last["stop"] in ("pause_turn", "refusal"):
            if results:
                self.messages.append({"role": "user", "content": results})
            return False, None
        text = "".join(b.get("text", "") for b in last["content"] if b.get("type") == "text")
        return await self._finish(text, replaying=True)

    def _take_steering(self) -> None:
        """Deliver steering messages at the start of a turn, without restarting the node."""
        last = self.messages[-1]
        if self.steering is None or last["role"] != "user":  # after pause_turn: next turn
            return
        texts = self.steering(self.turn)
        if not texts:
            return
        self._steer(texts)
        self._note({"k": "s", "texts": texts})

    def _steer(self, texts: list[str]) -> None:
        last = self.messages[-1]
        content = last["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        blocks += steering_blocks(texts)
        self.messages[-1] = {**last, "content": blocks}

    async def _ask(self) -> tuple[Any, dict[str, Any] | None]:
        """One model turn: the response, and the request's metadata for the turn journal
        (``None`` when nothing is journaled: a run without a directory)."""
        extra_tools = self.advisor.tools() if self.advisor else []
        betas = self.advisor.betas() if self.advisor else ()
        request = _request(self.node, self.system, self.messages, self.tools, extra_tools, betas)
        try:
            served = await self.call(request, self.node.fallbacks)
        except ModelError as error:
            if not (self.advisor and self.advisor.native and refuses_native(error)):
                raise
            if self.advisor.advisor.mode == "native":
                # Asked for native: no silent switch, no identical retry; one line saying why.
                raise ModelError(
                    f"node {self.node.name!r}: the endpoint of {self.node.model} refused the "
                    f"native advisor tool ({error}); use Advisor(mode='emulated') for this role",
                    status=error.status, provider=error.provider, model=error.model,
                ) from error  # fmt: skip
            self.advisor.support.refused(self.node.model, error)  # auto mode: emulate from now on
            request = _request(self.node, self.system, self.messages, self.tools,
                               self.advisor.tools(), ())  # fmt: skip
            served = await self.call(request, self.node.fallbacks)
        response = served.response
        _record_turn(self.report, self.turn, served)
        meta = turn_meta(request, served) if self.report.note is not None else None
        if self.advisor:
            self.advisor.note_native(response, self.turn)
        usage = response.usage
        self.emit(ModelTurn(self.node.name, self.turn, served.served_by, response.stop_reason,
                            usage.input_tokens, usage.output_tokens))  # fmt: skip
        return response, meta

    async def _run_tools(
        self, uses: list[dict[str, Any]], done: list[dict[str, Any]] | None = None
    ) -> None:
        """Run the calls of a turn, each result journaled as it comes (``done``: the results a
        crashed attempt had already recorded for this turn)."""
        results: list[dict[str, Any]] = list(done or [])
        trigger: str | None = None
        waiting = self.approvals.waiting(uses, self.tools) if self.approvals else []
        if self.approvals and waiting:  # nothing of this turn runs before the person decides
            raise self.approvals.pause(self.node.name, waiting, self.messages, self.turn)
        for use in uses:
            note = self.approvals.rejection(use) if self.approvals else None
            if note is not None:
                said = f"a person rejected this call{': ' + note if note else ''}"
                self._result(results, tool_result(use, said, True))
                continue
            if use["name"] == TOOL_NAME and self.advisor and not self.advisor.native:
                answer = await self.advisor.answer_tool(use, self.system, self.messages, self.turn)
                self._result(results, answer)
                continue
            result = await _call_tool(self.tools, use, self.ctx, self.report, self.emit)
            self._result(results, result)
            if self.advisor:
                trigger = self.advisor.tool_outcome(use, bool(result.get("is_error"))) or trigger
        if trigger and self.advisor:
            advice = await self.advisor.triggered(
                "repeated_failure", trigger, self.system, self.messages, self.turn
            )
            if advice:
                text = f"Advice from your advisor ({trigger}): {advice}"
                self._result(results, {"type": "text", "text": text})
        self.messages.append({"role": "user", "content": results})

    def _result(self, results: list[dict[str, Any]], block: dict[str, Any]) -> None:
        results.append(block)
        self._note({"k": "r", "block": block})

    async def _finish(self, text: str, *, replaying: bool = False) -> tuple[bool, Any]:
        """Validate, check and (if asked) have the advisor review a final answer (``replaying``:
        the answer a stopped attempt recorded, whose review may be recorded too)."""
        try:
            output = _parse_output(self.role.output, text) if self.role.output else text
            problem = await self.role.check(output, self.ctx) if self.role.check else None
        except ValueError as invalid:
            schema = self.role.output.__name__ if self.role.output else "the output schema"
            problem = f"your reply did not validate against {schema}: {invalid}"
        if problem:
            await self._send_back(str(problem))
            return False, None
        if self.advisor and self.advisor.advisor.before_done and not self.advisor.final_review_done:
            self.advisor.final_review_done = True
            # A review the stopped attempt got (recorded, so paid) is replayed, not asked again.
            advice = self.advisor.recorded_review(self.turn) if replaying else None
            if advice is None:
                advice = await self.advisor.triggered(
                    "before_done", "review before done", self.system, self.messages, self.turn,
                    question=REVIEW_PROMPT,
                )  # fmt: skip
            if advice and not says_stop(advice):
                review = f"An advisor reviewed your answer: {advice}\nRevise it and reply again."
                self.messages.append({"role": "user", "content": review})
                self._note({"k": "u", "content": review, "why": "review"})
                return False, None
        return True, output

    async def _send_back(self, problem: str) -> None:
        if self.fixes_left == 0:
            raise NodeError(
                f"node {self.node.name!r}: output never passed ({problem}); loosen the schema "
                "or check, or raise Role(output_retries=...)"
            )
        self.fixes_left -= 1
        feedback = f"{problem[0].upper()}{problem[1:]}. Reply with the corrected answer only."
        if self.advisor and self.advisor.advisor.on_check_failure:
            advice = await self.advisor.triggered(
                "check_failure", problem, self.system, self.messages, self.turn
            )
            if advice:
                feedback += f"\nAdvice from your advisor: {advice}"
        self.messages.append({"role": "user", "content": feedback})
        self._note({"k": "u", "content": feedback, "why": "fix"})


def _request(
    node: RoleNode,
    system_text: str,
    messages: list[dict[str, Any]],
    tools: Mapping[str, Any],
    extra_tools: Sequence[dict[str, Any]] = (),
    extra_betas: Sequence[str] = (),
) -> ModelRequest:
    """The turn's request; with caching on, breakpoints on the stable prefix (system and tools)
    and on the end of the conversation, so each turn reads what the last one wrote."""
    role = node.role
    params = [t.to_param() for t in tools.values()]
    system: Any = system_text
    sent = list(messages)
    if role.cache:
        system = [{"type": "text", "text": system_text, "cache_control": CACHE}]
        if params:
            params[-1] = {**params[-1], "cache_control": CACHE}
        sent[-1] = _with_breakpoint(sent[-1])
        if len(sent) >= 3:
            # Where the previous turn's request ended: its cache write is read back here, so
            # only the newest exchange is written (system, tools and these two: 4 breakpoints).
            sent[-3] = _with_breakpoint(sent[-3])
    params.extend(extra_tools)  # after the breakpoint: the advisor's uses-left changes per turn
    extra: dict[str, Any] = {}
    betas: tuple[str, ...] = tuple(extra_betas)
    if node.server_fallbacks:
        extra["fallbacks"] = [{"model": m} for m in node.server_fallbacks]
        betas += (SERVER_FALLBACK_BETA,)
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


def _record_turn(report: NodeReport, turn: int, served: Served) -> None:
    """Count the turn in ``report`` and note which model and endpoint served it."""
    report.turns = turn
    report.model = served.served_by
    entry: dict[str, Any] = {"turn": turn, "model": served.served_by, "endpoint": served.endpoint}
    if served.substituted:
        entry["requested"] = served.requested
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
    started = time.monotonic()
    tool = tools.get(use["name"])
    if tool is None:
        content, is_error = f"unknown tool {use['name']!r}; tools: {', '.join(tools)}", True
    else:
        result = await tool.call(dict(use.get("input") or {}), ctx)
        content, is_error = result.content, result.is_error
    emit(ToolCalled(ctx.node, use["name"], is_error, time.monotonic() - started))
    return tool_result(use, content, is_error)


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
