"""The call path: one run's way to its models — budget check, router, the bill, and each role
node's advisor session.

Every model call of a run goes through ``CallPath.call``: the budget reserves the call's estimate
(or refuses it), the shared ``ModelRouter`` sends it along the fallback chain, and the node's
``Spend`` counts what it really cost at the prices of the models that produced it; the recorder
journals that at once, so paid work is in the ledger as soon as it is paid. Each call's wall
time and time to first token are journaled with it, and a streaming call's text deltas are
emitted as ``TextDelta`` events. A run-wide ``AdvisorBudget`` is kept here too, in a
``ConsultPool`` every node's advisor session draws on.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowgraph.agent.consult_record import Consult
from flowgraph.agent.consults import AdvisorSession, NativeSupport
from flowgraph.compile.validation import ValidGraph
from flowgraph.declare.aliases import resolve_model
from flowgraph.declare.nodes import RoleNode
from flowgraph.errors import ConfigError
from flowgraph.events import FallbackTaken, ModelCalled, ModelSubstituted, TextDelta
from flowgraph.execute.emitter import Emitter
from flowgraph.execute.recorder import Recorder
from flowgraph.models.router import ModelLimits, ModelRouter, RouterEvent, Served
from flowgraph.models.seam import Model, ModelRequest, Usage
from flowgraph.money.accounting import Spend
from flowgraph.money.advisor_budget import AdvisorBudget, ConsultPool
from flowgraph.money.budget import Budget
from flowgraph.money.pricing import Pricing

__all__ = ["CallPath", "check_credentials", "default_client", "resolve_limits"]


class CallPath:
    """The model-call path shared by every node of a run.

    Args:
        client: the provider.
        valid: the graph (for per-role budgets).
        recorder: where spend and consults are recorded.
        emit: where fallback events go.
        pricing: prices for costs and budget estimates.
        limits: per-model rate and concurrency limits, by full model id.
        max_cost_usd: the run's budget, if any.
        log: a logger for warnings (an endpoint that refuses the native advisor).
        advisor_budget: the run-wide caps on advisor consults, if any.
    """

    def __init__(
        self,
        client: Model,
        valid: ValidGraph,
        recorder: Recorder,
        emit: Emitter,
        *,
        pricing: Pricing,
        limits: Mapping[str, ModelLimits],
        max_cost_usd: float | None,
        log: Any,
        advisor_budget: AdvisorBudget | None = None,
    ) -> None:
        self.pricing = pricing
        self._recorder = recorder
        self._emit = emit
        records = recorder.doc.nodes
        node_limits = {n: node.role.max_cost_usd for n, node in valid.nodes.items()
                       if isinstance(node, RoleNode)}  # fmt: skip
        spent = {n: Spend(r.spend).known_usd for n, r in records.items() if r.spend}
        self.budget = Budget(pricing, max_cost_usd, node_limits, sum(spent.values()),
                             node_spent=spent)  # fmt: skip
        self.router = ModelRouter(client, limits=limits, on_event=self._on_router_event)
        per_model = getattr(client, "supports_advisor", None)  # named endpoints decide per model
        supports = (
            per_model
            if callable(per_model)
            else bool(getattr(client, "supports_advisor_tool", False))
        )
        self.native = NativeSupport(supports, log.warning)
        self._log = log
        self._spends: dict[str, Spend] = {}
        self._sessions: dict[str, AdvisorSession] = {}
        earlier = ((n, r.role, r.consults) for n, r in records.items())
        self.pool = (
            None if advisor_budget is None else ConsultPool(advisor_budget, pricing, earlier)
        )

    async def call(
        self, request: ModelRequest, fallbacks: Sequence[str], kind: str = "executor"
    ) -> Served:
        """Send ``request`` (falling back as needed) and bill it to its node under ``kind``
        (``"advisor"`` for a consult flowgraph makes itself)."""
        name = request.node
        spend = self._spends.get(name)
        if spend is None:  # counting goes on across attempts and processes: paid is paid
            record = self._recorder.record(name)
            spend = self._spends[name] = Spend(record.spend if record else None)
        session = self._sessions.get(name) if kind == "executor" else None
        held = None
        if session is not None and session.native:
            request, held = session.hold_native(request)
        reservation = self.budget.reserve(request) if self.budget.active else None
        started = time.monotonic()
        first: list[float] = []
        request = dataclasses.replace(request, on_text=self._relay(name, kind, started, first))
        try:
            served = await self.router.request(request, fallbacks)
        except BaseException:
            if reservation is not None:
                self.budget.settle(reservation, 0.0)
            if held is not None and session is not None:
                session.settle_native(held, None)
            raise
        wall = time.monotonic() - started
        if held is not None and session is not None:
            session.settle_native(held, served.response)
        before = spend.known_usd
        usage = served.response.usage
        spend.add(usage, served.served_by, self.pricing, kind)
        cost = spend.known_usd - before
        if reservation is not None:
            self.budget.settle(reservation, cost)
        ttft = round(first[0], 4) if first else None
        # The provider's id of the message: a bill can be matched to the ledger call by call.
        timing = {"kind": kind, "model": served.served_by, "id": served.response.id,
                  "wall_s": round(wall, 4), "ttft_s": ttft}  # fmt: skip
        self._recorder.spent(name, spend, timing)
        if self._emit.listening:
            self._emit(ModelCalled(name, kind, served.served_by, usage.input_tokens,
                                   usage.output_tokens, cost, wall, ttft,
                                   usage.cache_read_input_tokens,
                                   usage.cache_creation_input_tokens))  # fmt: skip
        if session is not None:
            turns = sum(r["calls"] for r in spend.rows.values() if r["kind"] == "executor")
            session.check(turns, spend.rows)
        return served

    def _relay(
        self, node: str, kind: str, started: float, first: list[float]
    ) -> Callable[[str], None]:
        """The ``on_text`` hook of one call: notes the first token, emits text deltas."""
        emit = self._emit if self._emit.listening else None

        def on_text(text: str) -> None:
            if not first:
                first.append(time.monotonic() - started)
            if text and emit is not None:
                emit(TextDelta(node, kind, text))

        return on_text

    def advisor_session(self, node: RoleNode) -> AdvisorSession | None:
        """The advisor state of one attempt of ``node`` (None without an advisor). Uses spent
        by earlier attempts still count: the cap is per node."""
        if node.advisor is None:
            return None
        record = self._recorder.record(node.name)
        earlier = [Consult.from_record(c) for c in record.consults] if record else []
        pricing = self.pricing

        def price(usage: Mapping[str, Any], model: str) -> float | None:
            return pricing.price(Usage.from_dict(usage), model).usd

        session = AdvisorSession(
            node.advisor, node.advisor_model, node.advisor_fallbacks, node.model, node.name,
            self.native, self.call, price, used=sum(1 for c in earlier if c.ok),
            consults=earlier, pool=self.pool, role=record.role if record else node.role.name,
            max_turns=node.role.max_turns,
        )  # fmt: skip

        def recorded(consult: Consult) -> None:
            self._recorder.consulted(node.name, session.consults, consult, session.state(),
                                     (session.left, session.run_left))  # fmt: skip

        def warned(kind: str, message: str) -> None:
            self._recorder.advisor_warned(node.name, kind, message, session.state())

        session.on_record = recorded
        session.on_warning = warned
        self._sessions[node.name] = session
        return session

    def _on_router_event(self, event: RouterEvent) -> None:
        if event.kind == "fallback" and event.to_model:
            self._emit(FallbackTaken(event.node, event.model, event.to_model, event.reason))
        elif event.kind == "substituted":
            # Recorded and priced as the model that answered; said out loud, since the user
            # asked for another one (a gateway's own fallback list, a remapped name).
            self._log.warning(
                f"node {event.node!r}: asked {event.model}, but {event.to_model} answered; "
                "recorded and priced as the model that answered"
            )
            self._emit(ModelSubstituted(event.node, event.model, event.to_model))


def resolve_limits(limits: Mapping[str, ModelLimits] | None) -> dict[str, ModelLimits]:
    """Limits keyed by full model id (users may write aliases)."""
    return {resolve_model(m, where="limits"): v for m, v in (limits or {}).items()}


def default_client() -> Model:
    """The Anthropic API when a key or token is set; otherwise a clear error."""
    check_credentials()
    from flowgraph.models.anthropic import AnthropicModel

    return AnthropicModel()


def check_credentials() -> None:
    """Raise the clear error ``default_client`` would, without importing the SDK."""
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return
    raise ConfigError(
        "no model to run role nodes: set ANTHROPIC_API_KEY to use Anthropic's API, or pass "
        "client=... (e.g. flowgraph.testing.ScriptedModel) to the graph or run; "
        "`flowgraph demo` runs offline"
    )
