"""Consult monitoring: is the executor using its advisor well, or leaning on it?

Published guidance: an over-cautious executor burns ``max_uses`` early and leaves the hardest
decision unadvised; each consult re-reads the context at the advisor's prices. The checks here
read a node's consults (as the ledger records them) and say, in one line each, what looks
wrong: all uses spent in the first third of the node's turns (early burn), a consult on more
than half of the turns (a high rate), the advisor taking most of the node's cost, and a
consult input growing with the conversation. The live run emits them as events; ``flowgraph
cost`` prints them from the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["HIGH_RATE", "HIGH_SHARE", "warnings_for"]

HIGH_RATE = 0.5  # consults per executor turn
HIGH_SHARE = 0.8  # advisor dollars / node dollars (haiku + opus as published is ~70%)
MIN_TURNS_FOR_RATE = 4
GROWTH = 3.0  # the last consult's input over the first's


def warnings_for(
    node: str,
    consults: Sequence[Mapping[str, Any]],
    *,
    turns: int,
    max_turns: int,
    max_uses: int,
    spend: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """The warnings a node's consults deserve, as ``{"kind", "message"}`` records."""
    ok = [c for c in consults if c.get("outcome") == "ok"]
    found: list[dict[str, str]] = []
    if ok and len(ok) >= max_uses:
        last = max(int(c.get("turn") or 0) for c in ok)
        if last * 3 <= max_turns:
            found.append({"kind": "early_burn", "message": (
                f"node {node!r} spent all {max_uses} advisor uses by turn {last} of {max_turns} "
                "(the first third): later, harder decisions go unadvised; lower the consult "
                "rate (guidance) or raise max_uses")})  # fmt: skip
    if turns >= MIN_TURNS_FOR_RATE and len(ok) / turns > HIGH_RATE:
        found.append({"kind": "high_rate", "message": (
            f"node {node!r} consulted its advisor on {len(ok)} of {turns} turns: the executor "
            "leans on it; a stronger executor may be cheaper")})  # fmt: skip
    share = advisor_share(spend or {})
    if share is not None and share > HIGH_SHARE:
        found.append({"kind": "advisor_share", "message": (
            f"node {node!r}: the advisor is {share:.0%} of its cost; bound its context "
            "(Advisor(context=...)) or use the strong model alone")})  # fmt: skip
    sizes = [int(c.get("input_tokens") or 0) for c in ok]
    if len(sizes) >= 2 and sizes[0] and sizes[-1] >= GROWTH * sizes[0]:
        found.append({"kind": "context_growth", "message": (
            f"node {node!r}: consult input grew from {sizes[0]:,} to {sizes[-1]:,} tokens; "
            "use Advisor(context='last_turns') or a max_input_tokens cap")})  # fmt: skip
    return found


def advisor_share(spend: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The advisor's part of a node's known cost (None without both parts priced)."""
    total = sum(float(r.get("cost_usd") or 0.0) for r in spend.values())
    advice = sum(float(r.get("cost_usd") or 0.0) for r in spend.values()
                 if r.get("kind") == "advisor")  # fmt: skip
    if total <= 0 or advice <= 0:
        return None
    return advice / total
