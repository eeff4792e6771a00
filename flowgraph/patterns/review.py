"""Bounded review loop: a reviewer judges an earlier node's work; changes requested send the
work back to that node's role with the review attached, at most ``max_rounds`` rounds."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.names import scoped
from flowgraph.declare.nodes import ReviewLoopNode
from flowgraph.errors import NodeError

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["run_loop"]

REVISE = (
    "\n\nYour previous work:\n{work}\n\nA reviewer asked for changes (round {round}):\n"
    "{review}\nRevise your work accordingly."
)


async def run_loop(node: ReviewLoopNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Review, revise, review... until approved or out of rounds; every round is recorded."""
    assert node.work is not None  # filled in when the graph is validated
    work = ctx.outputs[node.work_name]
    verdict: Any = None
    reviser = dataclasses.replace(node.work, task=node.work.task + REVISE)
    for round_ in range(1, node.max_rounds + 1):
        if round_ > 1:
            revise_ctx = dataclasses.replace(
                ctx, vars={"work": work, "review": verdict, "round": round_}
            )
            record = scoped(node.name, f"revise{round_}")
            work = await env.run_unit(
                record,
                dataclasses.replace(reviser, name=record),
                revise_ctx,
                parent=node.name,
                key=f"revise{round_}",
            )
        review_ctx = dataclasses.replace(ctx, vars={"work": work, "round": round_})
        record = scoped(node.name, f"review{round_}")
        verdict = await env.run_unit(
            record,
            dataclasses.replace(node.review, name=record),
            review_ctx,
            parent=node.name,
            key=f"review{round_}",
        )
        if _approved(verdict):
            return {"approved": True, "rounds": round_, "work": work, "review": verdict}
    if node.on_give_up == "pass":
        return {"approved": False, "rounds": node.max_rounds, "work": work, "review": verdict}
    raise NodeError(
        f"review loop {node.name!r}: not approved after {node.max_rounds} rounds; last review: "
        f"{verdict}; raise max_rounds or use on_give_up='pass'"
    )


def _approved(verdict: Any) -> bool:
    if isinstance(verdict, dict):
        return bool(verdict.get("approved"))
    return str(verdict).strip().upper().startswith(("APPROVED", "LGTM"))
