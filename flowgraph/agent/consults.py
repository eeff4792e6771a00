"""Consults: a stronger model a cheap executor consults only at hard decisions.

``Advisor`` (``flowgraph.declare.advisor``) is the policy a role declares; ``AdvisorSession``
carries it through one node's tool loop, and each consult is a ``Consult`` record. Two ways
to consult, one contract:

- **native**: the request carries Anthropic's server tool ``advisor_20260301`` (beta
  ``advisor-tool-2026-03-01``); the API runs the consult inside the response and reports the
  advisor's tokens as ``usage.iterations`` entries of type ``advisor_message``.
- **emulated**: for any model or endpoint, a client tool named ``advisor``; when the executor
  calls it, flowgraph sends the transcript so far to the advisor model (no tools, bounded
  ``max_tokens``) and returns the advice as the tool result.
- **auto**: native where the client supports it, emulated otherwise, and emulated from then on
  for an executor model whose endpoint refuses the native tool.

``max_uses`` holds across the whole node, not per request: a native request offers the uses
that are left and the tool is dropped at zero; past the cap the emulated tool answers
``max_uses_exceeded``. A native request answered by a translated message (not ``msg_...``)
with no advisor blocks and no advisor iterations is flagged ``native_unaccounted``: the
gateway took the tool, and ran the consult itself out of sight and unpriced (LiteLLM does for
non-Anthropic models) or dropped it.
A run may also cap consults over all its nodes, in uses and dollars
(``flowgraph.money.advisor_budget``): a consult holds its share of that cap before it starts.
An emulated consult shows the advisor what the node's context policy keeps
(``flowgraph.agent.advisor_context``). Triggers consult even when a weak executor does not
ask: the same tool call failing N times in a row, a failed check, and before the node
declares itself done.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowgraph.agent.advisor_context import ContextBuilder
from flowgraph.agent.blocks import tool_result
from flowgraph.agent.consult_monitor import warnings_for
from flowgraph.agent.consult_record import Consult
from flowgraph.agent.native_trace import TOOL_NAME, consult_out_of_sight
from flowgraph.declare.advisor import Advisor
from flowgraph.declare.aliases import resolve_model
from flowgraph.errors import ModelError
from flowgraph.models.seam import ModelRequest, ModelResponse
from flowgraph.money.advisor_budget import ConsultHold, ConsultPool

__all__ = [
    "ADVISOR_BETA",
    "DEFAULT_GUIDANCE",
    "NATIVE_TOOL",
    "AdvisorSession",
    "NativeSupport",
    "says_stop",
]

NATIVE_TOOL = "advisor_20260301"
ADVISOR_BETA = "advisor-tool-2026-03-01"
UNACCOUNTED = "native_unaccounted"

DEFAULT_GUIDANCE = (
    "You can consult a stronger advisor model with the `advisor` tool; its uses are limited. "
    "Consult it before committing to an approach, when you are stuck on a recurring error, "
    "and before declaring the task done. Ask one specific question."
)
ADVISOR_SYSTEM = (
    "You advise a less capable model that is working on a task; you see its transcript. Reply "
    "in a few sentences with exactly one of: a short plan, a specific correction, or STOP if "
    "the work is done and correct. Do not do the task yourself."
)
REVIEW_PROMPT = (
    "The model is about to declare the task done with the final answer above. If it is "
    "correct and complete reply STOP; otherwise give the one correction that matters most."
)


class NativeSupport:
    """Which executor models' endpoints take the native tool; shared by a run's nodes."""

    def __init__(
        self, client_supports: bool | Callable[[str], bool], log: Callable[[str], None]
    ) -> None:
        # A bool for one endpoint; per model (its endpoint decides) for named endpoints.
        self.client_supports = client_supports
        self._refused: set[str] = set()
        self._log = log

    def usable(self, executor: str) -> bool:
        supports = self.client_supports
        known = supports(executor) if callable(supports) else supports
        return known and executor not in self._refused

    def refused(self, executor: str, error: ModelError) -> None:
        if executor not in self._refused:
            self._refused.add(executor)
            self._log(
                f"the endpoint refused the native advisor tool for {executor} ({error}); "
                "using the emulated advisor for this model from now on"
            )


# (request, fallbacks, kind) -> served response; kind "advisor" bills the call as advice.
ConsultCall = Callable[[ModelRequest, Sequence[str], str], Awaitable[Any]]
Price = Callable[[Mapping[str, Any], str], float | None]


@dataclass
class AdvisorSession:
    """One node's advisor state: uses left, the mode in force, and every consult made."""

    advisor: Advisor
    model: str  # the advisor's full model id
    fallbacks: tuple[str, ...]
    executor: str
    node: str
    support: NativeSupport
    call: ConsultCall
    price: Price
    used: int = 0
    final_review_done: bool = False
    consults: list[Consult] = field(default_factory=list)
    on_record: Callable[[Consult], None] | None = None  # each consult, as it happens
    pool: ConsultPool | None = None  # the run-wide caps, shared by every node
    role: str | None = None  # the node's role, for the pool's reservations
    max_turns: int = 0  # the node's, for the early-burn check
    on_warning: Callable[[str, str], None] | None = None  # (kind, message), once per kind
    _offered: bool = False  # the last executor request went out with the native tool
    _failures: tuple[str, int] = ("", 0)
    _context: ContextBuilder | None = None
    _warned: dict[str, str] = field(default_factory=dict)

    # -- what each request carries --------------------------------------------------------

    @property
    def native(self) -> bool:
        mode = self.advisor.mode
        return mode == "native" or (mode == "auto" and self.support.usable(self.executor))

    @property
    def left(self) -> int:
        """Uses this node may still make: its own cap, and the run's."""
        own = self.advisor.max_uses - self.used
        run = self.pool.left(self.node, self.role) if self.pool is not None else None
        return own if run is None else min(own, run)

    @property
    def run_left(self) -> int | None:
        """Uses left in the whole run (``None``: the run has no cap on uses)."""
        return self.pool.left() if self.pool is not None else None

    def _left_for_executor(self) -> int:
        reserved = 1 if self.advisor.reserve_final and not self.final_review_done else 0
        return max(0, self.left - reserved)

    def state(self) -> dict[str, Any]:
        """Uses, uses left (of the node and of the run) and warnings, as the ledger keeps
        them."""
        state: dict[str, Any] = {"max_uses": self.advisor.max_uses, "used": self.used,
                                 "left": max(0, self.advisor.max_uses - self.used),
                                 "max_turns": self.max_turns}  # fmt: skip
        if self.pool is not None:
            state["run"] = self.pool.state()
        if self._warned:
            state["warnings"] = [{"kind": k, "message": m} for k, m in self._warned.items()]
        return state

    def guidance(self) -> str:
        text = DEFAULT_GUIDANCE if self.advisor.guidance is None else self.advisor.guidance
        return f"\n\n{text}" if text else ""

    def tools(self) -> list[dict[str, Any]]:
        """The advisor tool param for the next request ([] once the executor's uses are spent)."""
        left = self._left_for_executor()
        if self.native:
            if left == 0:
                return []
            return [{"type": NATIVE_TOOL, "name": TOOL_NAME, "model": self.model,
                     "max_uses": left, "max_tokens": self.advisor.max_tokens}]  # fmt: skip
        return [
            {
                "name": TOOL_NAME,
                "description": "Consult a stronger advisor model about a hard decision. "
                "Uses are limited; ask one specific question.",
                "input_schema": {
                    "type": "object",
                    "properties": {"question": {"type": "string"}},
                    "required": ["question"],
                },
            }
        ]

    def betas(self) -> tuple[str, ...]:
        return (ADVISOR_BETA,) if self.native and self._left_for_executor() else ()

    def context_tokens(self, request: ModelRequest) -> int:
        """About how many tokens a native consult of ``request`` re-reads (~4 chars each)."""
        return len(json.dumps([request.system, list(request.messages)], default=str)) // 4

    def hold_native(self, request: ModelRequest) -> tuple[ModelRequest, ConsultHold | None]:
        """Before a request that offers the native tool: hold the uses it offers in the run's
        pool, lowering its ``max_uses`` to what the run grants (dropping the tool at 0); and
        warn when the context each consult would re-read is large."""
        tool = next((t for t in request.tools if t.get("type") == NATIVE_TOOL), None)
        self._offered = tool is not None
        if tool is None:
            return request, None
        context = self.context_tokens(request)
        threshold = self.advisor.warn_context_tokens
        if threshold is not None and context > threshold:
            self._warn(
                "native_context",
                f"node {self.node!r}: a native consult would re-read ~{context:,} tokens of "
                f"context at {self.model}'s input price (over {threshold:,}); bound the "
                "executor's history or use Advisor(mode='emulated', context='last_turns')",
            )
        if self.pool is None:
            return request, None
        usd_each = self.pool.estimate(self.model, context * 4, self.advisor.max_tokens)
        held = self.pool.hold(self.node, self.role, int(tool["max_uses"]), usd_each)
        others = [t for t in request.tools if t is not tool]
        if held.uses == 0:
            self._offered = False
            betas = tuple(b for b in request.betas if b != ADVISOR_BETA)
            return dataclasses.replace(request, tools=others, betas=betas), held
        tools = [*others, {**tool, "max_uses": held.uses}]
        return dataclasses.replace(request, tools=tools), held

    def settle_native(self, held: ConsultHold, response: ModelResponse | None) -> None:
        """Turn a native hold into what the response used (nothing, if it failed)."""
        if self.pool is None:
            return
        if response is None:
            self.pool.settle(held, 0, 0.0)
            return
        used = sum(
            1
            for b in response.content
            if b.get("type") == "advisor_tool_result"
            and (b.get("content") or {}).get("type") != "advisor_tool_result_error"
        )
        usd = 0.0
        for entry in response.usage.iterations:
            if entry.get("type") == "advisor_message":
                usd += self.price(entry, str(entry.get("model") or self.model)) or 0.0
        self.pool.settle(held, used, usd)

    # -- native consults, read from a response ----------------------------------------------

    def note_native(self, response: ModelResponse, turn: int) -> None:
        """Record the consults the API ran inside ``response``, and flag an answer to a request
        that offered the native tool which gives no account of it."""
        # `native` again: a request refused in auto mode was sent once more without the tool.
        offered, self._offered = self._offered and self.native, False
        if offered and consult_out_of_sight(response):
            self._flag_unaccounted(
                turn, response.id
            )  # once per node: the ledger's warnings and an event
        advisor_iterations = [
            i for i in response.usage.iterations if i.get("type") == "advisor_message"
        ]
        for block in response.content:
            if block.get("type") != "advisor_tool_result":
                continue
            content = block.get("content") or {}
            kind = content.get("type")
            if kind == "advisor_tool_result_error":
                self._record(turn, "native", "executor", "", "error",
                             error=content.get("error_code"))  # fmt: skip
                continue
            usage = advisor_iterations.pop(0) if advisor_iterations else {}
            advice = content.get("text", "") if kind == "advisor_result" else "[redacted]"
            self.used += 1
            self._record(turn, "native", "executor", advice, "ok", usage=usage)

    def _flag_unaccounted(self, turn: int, answer: str) -> None:
        self._warn(
            UNACCOUNTED,
            f"node {self.node!r}: {self.executor} was offered the native advisor tool (turn "
            f"{turn}) and its endpoint answered with a translated message ({answer!r}) with no "
            "advisor blocks and no advisor iterations: a gateway that runs the consult itself "
            "(LiteLLM for non-Anthropic models) makes calls flowgraph can neither count nor "
            "price. Use Advisor(mode='emulated') for this role, or Endpoint(advisor='emulated') "
            "for its endpoint",
        )

    # -- emulated and triggered consults ----------------------------------------------------

    async def answer_tool(
        self, use: Mapping[str, Any], system: str, messages: Sequence[Mapping[str, Any]], turn: int
    ) -> dict[str, Any]:
        """The tool_result for an emulated ``advisor`` call."""
        if self._left_for_executor() == 0:
            self._record(turn, "emulated", "executor", "", "error", error="max_uses_exceeded")
            where = "in this node" if self.advisor.max_uses - self.used <= 0 else "in this run"
            return tool_result(
                use, f"max_uses_exceeded: no advisor uses are left {where}; carry on", True
            )
        question = str((use.get("input") or {}).get("question") or "")
        advice, error = await self._consult(system, messages, question, turn, "executor", "")
        if error:
            return tool_result(use, f"advisor unavailable: {error}; carry on without it", True)
        return tool_result(use, advice)

    def recorded_review(self, turn: int) -> str | None:
        """The advice of the final review already recorded for the answer of ``turn`` (the
        node's last consult), for an attempt carried on after a stop; None if there is none.

        Advice that sent the answer back was journaled with it, so a replayed answer with no
        such message after it can only have been told to stop, or was never reviewed.
        """
        last = self.consults[-1] if self.consults else None
        if last is not None and last.ok and last.trigger == "before_done" and last.turn == turn:
            return last.advice
        return None

    def tool_outcome(self, use: Mapping[str, Any], failed: bool) -> str | None:
        """Track repeated failures of the same call; the trigger reason when it is due."""
        threshold = self.advisor.on_repeated_failure
        if threshold is None:
            return None
        key = json.dumps([use.get("name"), use.get("input")], sort_keys=True, default=str)
        previous, count = self._failures
        count = (count + 1 if key == previous else 1) if failed else 0
        self._failures = (key, count)
        if count == threshold:
            return f"the same {use.get('name')} call failed {count} times in a row"
        return None

    async def triggered(
        self,
        trigger: str,
        reason: str,
        system: str,
        messages: Sequence[Mapping[str, Any]],
        turn: int,
        question: str = "",
    ) -> str | None:
        """A consult flowgraph starts itself; the advice, or None when none could be had."""
        if self.left == 0:
            return None
        advice, error = await self._consult(system, messages, question or reason, turn, trigger,
                                            reason)  # fmt: skip
        return None if error else advice

    async def _consult(
        self,
        system: str,
        messages: Sequence[Mapping[str, Any]],
        question: str,
        turn: int,
        trigger: str,
        reason: str,
    ) -> tuple[str, str | None]:
        if self._context is None:
            self._context = ContextBuilder(self.advisor, self._summarize)
        transcript = await self._context.build(system, messages)
        ask = f"{transcript}\n\n--- The model asks ---\n{question}" if question else transcript
        held = None
        mode = "emulated" if trigger == "executor" else "triggered"
        if self.pool is not None:
            usd_each = self.pool.estimate(self.model, len(ask), self.advisor.max_tokens)
            held = self.pool.hold(self.node, self.role, 1, usd_each)
            if held.uses == 0:
                self.pool.settle(held, 0, 0.0)
                error = "the run's advisor budget is spent (AdvisorBudget)"
                self._record(turn, mode, trigger, "", "error", error=error, reason=reason)
                return "", error
        request = ModelRequest(
            model=self.model,
            system=ADVISOR_SYSTEM,
            messages=[{"role": "user", "content": ask}],
            max_tokens=self.advisor.max_tokens,
            node=self.node,
            purpose="advisor",
        )
        try:
            served = await self.call(request, self.fallbacks, "advisor")
        except BaseException as exc:
            if held is not None and self.pool is not None:
                self.pool.settle(held, 0, 0.0)
            if not isinstance(exc, ModelError):
                raise
            self._record(turn, mode, trigger, "", "error", error=str(exc), reason=reason)
            return "", str(exc)
        self.used += 1
        usage = {**served.response.usage.to_dict(), "model": served.served_by}
        if held is not None and self.pool is not None:
            self.pool.settle(held, 1, self.price(usage, served.served_by) or 0.0)
        advice = served.response.text
        self._record(turn, mode, trigger, advice, "ok", usage=usage, reason=reason)
        return advice, None

    async def _summarize(self, system: str, text: str, max_tokens: int) -> str:
        """The ``summary`` policy's cheap summary, billed as advisor spend."""
        model = resolve_model(self.advisor.summary_model, where=f"node {self.node!r} advisor")
        request = ModelRequest(
            model=model,
            system=system,
            messages=[{"role": "user", "content": text}],
            max_tokens=max_tokens,
            node=self.node,
            purpose="advisor",
        )
        served = await self.call(request, (), "advisor")
        return str(served.response.text)

    def _warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned[kind] = message
        if self.on_warning is not None:
            self.on_warning(kind, message)

    def check(self, turns: int, spend: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Look at the consults so far and warn (once per kind) about what looks wrong."""
        records = [c.to_record() for c in self.consults]
        for found in warnings_for(self.node, records, turns=turns, max_turns=self.max_turns,
                                  max_uses=self.advisor.max_uses, spend=spend):  # fmt: skip
            self._warn(found["kind"], found["message"])

    def _record(
        self,
        turn: int,
        mode: str,
        trigger: str,
        advice: str,
        outcome: str,
        *,
        usage: Mapping[str, Any] | None = None,
        error: Any = None,
        reason: str = "",
    ) -> None:
        usage = usage or {}
        model = str(usage.get("model") or self.model)
        consult = Consult(
            turn=turn,
            mode=mode,
            trigger=trigger,
            outcome=outcome,
            model=model,
            advice=advice,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cost_usd=self.price(usage, model) if usage else 0.0,
            reason=reason,
            error=error,
        )
        self.consults.append(consult)
        if outcome == "ok" and self.max_turns:
            self.check(turn)
        if self.on_record is not None:
            self.on_record(consult)


def says_stop(advice: str) -> bool:
    """Whether advice is the stop signal (the work is done and correct)."""
    return advice.strip().upper().startswith(("STOP", "APPROVE", "LGTM"))
