"""Budget: cost caps per run and per node, shared by every parallel branch of a run.

Before each model call the caller ``reserve``s an estimate of what the call may cost (its input
at the model's input price, plus up to 1,024 output tokens); a call whose estimate, added to
what is spent and what other calls in flight have reserved, would cross a cap does not start:
``BudgetError``. When the call returns, ``settle`` replaces the estimate by the real cost.
Spending recorded by earlier processes of the run (from the ledger) counts toward the run cap,
so a resumed run goes on only with a higher budget.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from flowgraph.errors import BudgetError
from flowgraph.models.seam import ModelRequest, Usage
from flowgraph.money.pricing import Pricing

__all__ = ["Budget", "Reservation"]

EXPECTED_OUTPUT_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Reservation:
    node: str
    usd: float


class Budget:
    """Spending caps and what is spent against them.

    Args:
        pricing: prices for the estimates.
        run_limit: the cap for the whole run in USD, or None.
        node_limits: per-node caps in USD.
        run_spent: USD spent by earlier processes of this run.
        node_spent: USD each node spent in earlier processes.
    """

    def __init__(
        self,
        pricing: Pricing,
        run_limit: float | None,
        node_limits: Mapping[str, float | None],
        run_spent: float = 0.0,
        node_spent: Mapping[str, float] | None = None,
    ) -> None:
        self.pricing = pricing
        self.run_limit = run_limit
        self.node_limits = {n: v for n, v in node_limits.items() if v is not None}
        self.run_spent = run_spent
        self.node_spent = dict(node_spent or {})
        self._reserved = 0.0
        self._node_reserved: dict[str, float] = {}

    @property
    def active(self) -> bool:
        """Whether any cap is set (without one, nothing is estimated or checked)."""
        return self.run_limit is not None or bool(self.node_limits)

    def applies_to(self, node: str) -> bool:
        return self.run_limit is not None or node in self.node_limits

    def reserve(self, request: ModelRequest) -> Reservation:
        """Hold the estimated cost of ``request``; ``BudgetError`` if it may cross a cap."""
        node = request.node
        if not self.applies_to(node):
            return Reservation(node, 0.0)
        estimate = self.estimate(request)
        node_limit = self.node_limits.get(node)
        if node_limit is not None:
            held = self.node_spent.get(node, 0.0) + self._node_reserved.get(node, 0.0)
            if held + estimate > node_limit:
                raise BudgetError(
                    f"node {node!r} would pass its budget: ${held:.4f} spent or in flight, the "
                    f"next call may cost ${estimate:.4f}, max_cost_usd is ${node_limit:g}; "
                    "raise Role(max_cost_usd=...) and resume"
                )
        if self.run_limit is not None:
            held = self.run_spent + self._reserved
            if held + estimate > self.run_limit:
                raise BudgetError(
                    f"the run would pass its budget: ${held:.4f} spent or in flight, the next "
                    f"call (node {node!r}) may cost ${estimate:.4f}, max_cost_usd is "
                    f"${self.run_limit:g}; resume with a higher --max-cost-usd"
                )
        self._reserved += estimate
        self._node_reserved[node] = self._node_reserved.get(node, 0.0) + estimate
        return Reservation(node, estimate)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost (0 for a failed call)."""
        self._reserved -= reservation.usd
        self._node_reserved[reservation.node] = (
            self._node_reserved.get(reservation.node, 0.0) - reservation.usd
        )
        self.run_spent += actual_usd
        self.node_spent[reservation.node] = self.node_spent.get(reservation.node, 0.0) + actual_usd

    def estimate(self, request: ModelRequest) -> float:
        """Input at ~4 characters a token, plus up to 1,024 output tokens, at ``request.model``."""
        size = len(json.dumps([request.system, list(request.messages), list(request.tools)]))
        output = min(request.max_tokens, EXPECTED_OUTPUT_TOKENS)
        cost = self.pricing.price(Usage(size // 4, output), request.model).usd
        if cost is None:
            raise BudgetError(
                f"node {request.node!r} calls {request.model}, which has no price, under a "
                "budget; add its price (Pricing.with_prices) so the budget can be kept"
            )
        return cost
