"""Advisor budget: run-wide caps on advisor consults, in uses and in dollars, shared by every
node of a run (parallel ones included).

``AdvisorBudget`` is what a graph or a run declares; ``ConsultPool`` keeps it while the run goes.
Like the run's cost budget, a consult is *reserved* before it starts: a use (and the consult's
estimated cost) is held while it is in flight, so parallel nodes cannot together pass the cap;
when the consult returns, the hold becomes what it really used and cost. A native request holds
as many uses as it offers the API (its per-request ``max_uses``) and gives back the ones it did
not use.

A reservation keeps uses for named roles or nodes (``reserve={"reviewer": 1}``): no other node
may take them, so a late reviewer is not starved by the nodes that ran before it. Consults
recorded by earlier processes of the run count, so a resumed run starts with what is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowgraph.errors import ConfigError
from flowgraph.models.seam import Usage
from flowgraph.money.pricing import Pricing

__all__ = ["AdvisorBudget", "ConsultHold", "ConsultPool"]


@dataclass(frozen=True, kw_only=True)
class AdvisorBudget:
    """Run-wide caps on advisor consults.

    Args:
        max_uses: consults allowed in the whole run, over all nodes; ``None`` for no cap.
        max_cost_usd: advisor dollars allowed in the whole run; ``None`` for no cap.
        reserve: uses kept for a role or node name (``{"reviewer": 1}``); their sum may not
            pass ``max_uses``.
    """

    max_uses: int | None = None
    max_cost_usd: float | None = None
    reserve: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_uses is not None and self.max_uses < 0:
            raise ConfigError(f"AdvisorBudget: max_uses must be 0 or more, got {self.max_uses}")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ConfigError(
                f"AdvisorBudget: max_cost_usd must be a positive amount, got {self.max_cost_usd}"
            )
        bad = {k: v for k, v in self.reserve.items() if v < 1}
        if bad:
            raise ConfigError(f"AdvisorBudget: reserve needs counts of at least 1, got {bad}")
        if self.max_uses is not None and sum(self.reserve.values()) > self.max_uses:
            raise ConfigError(
                f"AdvisorBudget: reserve holds {sum(self.reserve.values())} uses but max_uses "
                f"is {self.max_uses}; raise max_uses or reserve fewer"
            )


@dataclass(frozen=True, slots=True)
class ConsultHold:
    """Uses and dollars held for one request (a consult, or a native request's offer)."""

    node: str
    key: str | None  # the reservation it draws on, if any
    uses: int
    usd: float


class ConsultPool:
    """A run's advisor budget as the run goes: what is spent, what is in flight.

    Args:
        budget: the caps.
        pricing: prices for the estimates and the advisor's dollars.
        earlier: ``(node, role, consult records)`` recorded by earlier processes of the run.
    """

    def __init__(
        self,
        budget: AdvisorBudget,
        pricing: Pricing,
        earlier: Iterable[tuple[str, str | None, Iterable[Mapping[str, Any]]]] = (),
    ) -> None:
        self.budget = budget
        self.pricing = pricing
        self.used = 0
        self.spent_usd = 0.0
        self._held_uses = 0
        self._held_usd = 0.0
        self._key_used: dict[str, int] = dict.fromkeys(budget.reserve, 0)
        for node, role, consults in earlier:
            key = self._key(node, role)
            for consult in consults:
                if consult.get("outcome") == "ok":
                    self._count(key, 1, float(consult.get("cost_usd") or 0.0))

    def _key(self, node: str, role: str | None) -> str | None:
        reserve = self.budget.reserve
        if node in reserve:
            return node
        return role if role is not None and role in reserve else None

    def _count(self, key: str | None, uses: int, usd: float) -> None:
        self.used += uses
        self.spent_usd += usd
        if key is not None:
            self._key_used[key] += uses

    def _kept_for_others(self, key: str | None) -> int:
        """Uses reserved for other names and not yet used (nor in flight) by them."""
        return sum(max(0, n - self._key_used[k]) for k, n in self.budget.reserve.items()
                   if k != key)  # fmt: skip

    def left(self, node: str = "", role: str | None = None) -> int | None:
        """Uses ``node`` may still take (``None``: no cap on uses); all nodes' when unnamed."""
        cap = self.budget.max_uses
        if cap is None:
            return None
        free = cap - self.used - self._held_uses
        if node or role:
            free -= self._kept_for_others(self._key(node, role))
        return max(0, free)

    @property
    def usd_left(self) -> float | None:
        cap = self.budget.max_cost_usd
        return None if cap is None else max(0.0, cap - self.spent_usd - self._held_usd)

    def estimate(self, model: str, input_chars: int, max_tokens: int) -> float:
        """One consult's cost if it reads ``input_chars`` (~4 a token) and writes in full."""
        usd = self.pricing.price(Usage(input_chars // 4 + 1, max_tokens), model).usd
        return 0.0 if usd is None else usd

    def hold(self, node: str, role: str | None, uses: int, usd_each: float) -> ConsultHold:
        """Hold up to ``uses`` consults for ``node`` (each may cost ``usd_each``); the hold may
        grant fewer, or none, when the run's caps are near."""
        granted = uses
        left = self.left(node, role)
        if left is not None:
            granted = min(granted, left)
        usd_left = self.usd_left
        if usd_left is not None:
            granted = min(granted, int(usd_left // usd_each) if usd_each > 0 else granted)
        granted = max(0, granted)
        key = self._key(node, role)
        held = ConsultHold(node, key, granted, usd_each * granted)
        self._held_uses += held.uses
        self._held_usd += held.usd
        if key is not None:
            self._key_used[key] += held.uses  # a reservation in flight is not free for others
        return held

    def settle(self, held: ConsultHold, used: int, usd: float) -> None:
        """Replace a hold by what the consults really used and cost (0, 0 when they failed)."""
        self._held_uses -= held.uses
        self._held_usd -= held.usd
        if held.key is not None:
            self._key_used[held.key] -= held.uses
        self._count(held.key, used, usd)

    def state(self) -> dict[str, Any]:
        """The run-wide figures, as events and the ledger show them."""
        return {
            "max_uses": self.budget.max_uses,
            "used": self.used,
            "left": self.left(),
            "max_cost_usd": self.budget.max_cost_usd,
            "spent_usd": round(self.spent_usd, 6),
        }
