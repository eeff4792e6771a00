"""The call path: one run's way to its models — budget check, router, the bill, and each role
node's advisor session.

Every model call of a run goes through ``CallPath.call``: the budget reserves the call's estimate
(or refuses it), the shared ``ModelRouter`` sends it along the fallback chain, and the node's
``Spend`` counts what it really cost at the prices of the models that produced it; the recorder
journals that at once, so paid work is in the ledger as soon as it is paid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from flowgraph.agent.consults import AdvisorSession, Consult, NativeSupport
from flowgraph.compile.validation import ValidGraph
from flowgraph.declare.aliases import resolve_model
from flowgraph.declare.nodes import RoleNode
from flowgraph.errors import ConfigError
from flowgraph.events import FallbackTaken
from flowgraph.execute.emitter import Emitter
from flowgraph.execute.recorder import Recorder
from flowgraph.models.router import ModelLimits, ModelRouter, RouterEvent, Served
from flowgraph.models.seam import Model, ModelRequest, Usage
from flowgraph.money.accounting import Spend
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
        self.native = NativeSupport(bool(getattr(client, "supports_advisor_tool", False)),
                                    log.warning)  # fmt: skip
        self._spends: dict[str, Spend] = {}

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
        reservation = self.budget.reserve(request) if self.budget.active else None
        try:
            served = await self.router.request(request, fallbacks)
        except BaseException:
            if reservation is not None:
                self.budget.settle(reservation, 0.0)
            raise
        before = spend.known_usd
        spend.add(served.response.usage, served.served_by, self.pricing, kind)
        if reservation is not None:
            self.budget.settle(reservation, spend.known_usd - before)
        self._recorder.spent(name, spend)
        return served

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
            consults=earlier,
        )  # fmt: skip

        def recorded(consult: Consult) -> None:
            self._recorder.consulted(node.name, session.consults, consult)

        session.on_record = recorded
        return session

    def _on_router_event(self, event: RouterEvent) -> None:
        if event.kind == "fallback" and event.to_model:
            self._emit(FallbackTaken(event.node, event.model, event.to_model, event.reason))


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
