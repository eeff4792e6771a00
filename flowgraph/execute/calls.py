"""Calls: one run's path to its models — budget check, router, and the bill.

Every model call of a run goes through here: the budget reserves the call's estimate (or
refuses it), the shared ``ModelRouter`` sends it along the fallback chain, and the node's
``Spend`` counts what it really cost at the prices of the models that produced it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from flowgraph.declare.aliases import resolve_model
from flowgraph.errors import ConfigError
from flowgraph.events import Event, FallbackTaken
from flowgraph.models.router import ModelLimits, ModelRouter, RouterEvent, Served
from flowgraph.models.seam import Model, ModelRequest
from flowgraph.money.accounting import Spend
from flowgraph.money.budget import Budget
from flowgraph.money.pricing import Pricing

__all__ = ["Calls", "default_client", "resolve_limits"]


class Calls:
    """The model-call path shared by every node of a run.

    Args:
        client: the provider.
        pricing: prices for costs and budget estimates.
        budget: the run's caps.
        limits: per-model rate and concurrency limits.
        emit: where fallback events go.
    """

    def __init__(
        self,
        client: Model,
        pricing: Pricing,
        budget: Budget,
        limits: Mapping[str, ModelLimits] | None,
        emit: Callable[[Event], None],
    ) -> None:
        self.pricing = pricing
        self.budget = budget
        self._emit = emit
        self.router = ModelRouter(client, limits=limits, on_event=self._on_router_event)

    async def call(
        self, request: ModelRequest, fallbacks: Sequence[str], spend: Spend, kind: str = "executor"
    ) -> Served:
        """Send ``request`` (falling back as needed) and count its cost into ``spend`` under
        ``kind`` (``"advisor"`` for a consult flowgraph makes itself)."""
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
        return served

    def _on_router_event(self, event: RouterEvent) -> None:
        if event.kind == "fallback" and event.to_model:
            self._emit(FallbackTaken(event.node, event.model, event.to_model, event.reason))


def resolve_limits(limits: Mapping[str, ModelLimits] | None) -> dict[str, ModelLimits]:
    """Limits keyed by full model id (users may write aliases)."""
    return {resolve_model(m, where="limits"): v for m, v in (limits or {}).items()}


def default_client() -> Model:
    """The Anthropic API when a key or token is set; otherwise a clear error."""
    if os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        from flowgraph.models.anthropic import AnthropicModel

        return AnthropicModel()
    raise ConfigError(
        "no model to run role nodes: set ANTHROPIC_API_KEY to use Anthropic's API, or pass "
        "client=... (e.g. flowgraph.testing.ScriptedModel) to the graph or run; "
        "`flowgraph demo` runs offline"
    )
