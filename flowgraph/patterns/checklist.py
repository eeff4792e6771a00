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

__all__ = ["MAX_ITEM_NAME", "item_names", "run_checklist"]


MAX_ITEM_NAME = 1_000  # characters; a name is shown in status lines and becomes a record name


async def run_checklist(node: ChecklistNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Initialize the checklist once, then work through the next ``max_items`` items."""
    features = _items(node, env)
    if features is None:
        items = await env.run_unit(scoped(node.name, "init"), node.init, ctx, parent=node.name,
                                   key="init")  # fmt: skip
        features = [{"name": n, "passes": False} for n in item_names(node.name, items)]
        _save(node, env, features)
    todo = [f for f in features if not f["passes"]][: env.max_items or None]
    for feature in todo:
        await _work_on(node, ctx, env, feature, features)
    left = [f["name"] for f in features if not f["passes"]]
    if left:
        raise Paused(
            NodeStatus.INCOMPLETE, f"{len(features) - len(left)} of {len(features)} items pass"
        )
    return {"items": len(features), "passed": len(features)}


def item_names(checklist: str, items: Any) -> list[str]:
    """The initializer's item names, checked and cleaned before anything is recorded: each a
    string (or a number), on one line of printable text, non-empty, at most ``MAX_ITEM_NAME``
    characters; a name given twice is kept once (the first time)."""
    if not isinstance(items, list) or not items:
        raise NodeError(
            f"checklist {checklist!r}: the initializer must return a non-empty list of "
            f"item names, got {str(items)[:200]!r}"
        )
    names: dict[str, None] = {}
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise NodeError(
                f"checklist {checklist!r}: item {index} is a {type(item).__name__}, not a "
                "name; return a list of strings"
            )
        name = " ".join("".join(c if c.isprintable() else " " for c in str(item)).split())
        if not name:
            raise NodeError(f"checklist {checklist!r}: item {index} has an empty name; give "
                            "every item a name")  # fmt: skip
        if len(name) > MAX_ITEM_NAME:
            raise NodeError(
                f"checklist {checklist!r}: item {index} has a name of {len(name)} characters "
                f"(at most {MAX_ITEM_NAME}); keep item names short"
            )
        names.setdefault(name)
    return list(names)


def _items(node: ChecklistNode, env: Env) -> list[dict[str, Any]] | None:
    """This checklist's items, kept in its own record (two checklists never share a list);
    a ledger from before that keeps them only in the run's ``features``."""
    record = env.record(node.name)
    if record is not None and record.items:
        return [dict(f) for f in record.items]
    if env.doc.checklist == node.name:
        return [f if isinstance(f, dict) else f.model_dump() for f in env.doc.features]
    return None


def _save(node: ChecklistNode, env: Env, features: list[dict[str, Any]]) -> None:
    """Record the items in the checklist's record, and as the run's ``features`` when this is
    the run's (first) checklist."""
    env.update(node.name, items=[dict(f) for f in features])
    if env.doc.checklist in (None, node.name):
        env.update_run(features=[dict(f) for f in features], checklist=node.name)


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
        _save(node, env, features)
        return
    message = "the check failed" if problem is False else str(problem)
    # Fail the work's record too, so the next run does the item again instead of reusing it.
    env.update(record, status=NodeStatus.FAILED, error=message, check_passed=False)
    env.update(node.name, last_failure={"item": name, "error": message})
