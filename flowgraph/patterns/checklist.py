"""Long-horizon checklist: an initializer writes work items into the ledger's ``features``;
each run takes the next few unchecked items, runs the work on each, and only the check flips
an item's ``passes``. The next process — or the next day — picks up where this one stopped."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.names import indexed, scoped
from flowgraph.declare.nodes import ChecklistNode
from flowgraph.errors import NodeError
from flowgraph.status import NodeStatus, Paused

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["run_checklist"]


async def run_checklist(node: ChecklistNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Initialize the checklist once, then work through the next ``max_items`` items."""
    if env.doc.checklist != node.name:
        items = await env.run_unit(scoped(node.name, "init"), node.init, ctx, parent=node.name,
                                   key="init")  # fmt: skip
        if not isinstance(items, list) or not items:
            raise NodeError(
                f"checklist {node.name!r}: the initializer must return a non-empty list of "
                f"item names, got {items!r}"
            )
        features = [{"name": str(i), "passes": False} for i in items]
        env.update_run(features=features, checklist=node.name)
    features = [dict(f) for f in _features(env)]
    todo = [f for f in features if not f["passes"]][: env.max_items or None]
    for feature in todo:
        await _work_on(node, ctx, env, feature, features)
    left = [f["name"] for f in features if not f["passes"]]
    if left:
        raise Paused(
            NodeStatus.INCOMPLETE, f"{len(features) - len(left)} of {len(features)} items pass"
        )
    return {"items": len(features), "passed": len(features)}


def _features(env: Env) -> list[dict[str, Any]]:
    return [f if isinstance(f, dict) else f.model_dump() for f in env.doc.features]


async def _work_on(
    node: ChecklistNode, ctx: Context, env: Env, feature: dict[str, Any], features: list[Any]
) -> None:
    name = feature["name"]
    record = indexed(node.name, name)
    item_ctx = dataclasses.replace(ctx, node=record, vars={"item": name})
    try:
        output = await env.run_unit(record, node.work, item_ctx, parent=node.name, key=name)
        problem = await node.check(name, output, item_ctx) if node.check else None
    except Exception as exc:
        problem = f"the work failed: {exc}"
    if problem in (None, True):
        feature["passes"] = True  # only a passing check flips an item
        env.update_run(features=features)
        return
    message = "the check failed" if problem is False else str(problem)
    # Fail the work's record too, so the next run does the item again instead of reusing it.
    env.update(record, status=NodeStatus.FAILED, error=message, check_passed=False)
    env.update(node.name, last_failure={"item": name, "error": message})
