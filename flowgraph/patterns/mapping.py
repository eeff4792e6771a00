"""Map: the same work once per item of a list an upstream node (or the run input) produced."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.names import indexed
from flowgraph.declare.nodes import MapNode
from flowgraph.errors import NodeError

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["run_map"]


def items_of(node: MapNode, ctx: Context) -> list[Any]:
    """The list to map over, or a ``NodeError`` that says what it was instead."""
    source = ctx.outputs.get(node.over, ctx.input.get(node.over))
    if not isinstance(source, list):
        raise NodeError(
            f"map {node.name!r}: {node.over!r} gave {type(source).__name__}, not a list; make "
            "it produce a list of items"
        )
    return source


async def run_map(node: MapNode, ctx: Context, env: Env) -> list[Any]:
    """Run every item (at most ``concurrency`` at once); results come back in input order.

    One item failing does not lose the others: every item runs to the end and what passed is
    recorded, so a resume runs only the items that did not pass. With ``on_error="fail"`` the
    map then fails; with ``"continue"`` it passes with ``None`` for each failed item.
    """
    items = items_of(node, ctx)
    limit = asyncio.Semaphore(node.concurrency) if node.concurrency else None
    results: list[Any] = [None] * len(items)
    errors: dict[int, str] = {}

    async def one(index: int, item: Any) -> None:
        record = indexed(node.name, index)
        item_ctx = dataclasses.replace(ctx, node=record, vars={"item": item, "index": index})
        key = json.dumps(item, sort_keys=True, default=str)
        async with limit if limit else contextlib.nullcontext():
            try:
                results[index] = await env.run_unit(
                    record, node.work, item_ctx, parent=node.name, key=key
                )
            except Exception as exc:
                errors[index] = str(exc) or type(exc).__name__

    async with asyncio.TaskGroup() as group:
        for index, item in enumerate(items):
            group.create_task(one(index, item))
    env.update(node.name, failed_items=sorted(errors))
    if errors and node.on_error == "fail":
        first = min(errors)
        raise NodeError(
            f"map {node.name!r}: {len(errors)} of {len(items)} items failed (first: "
            f"[{first}] {errors[first]}); the {len(items) - len(errors)} that passed are kept "
            "and a resume runs only the rest"
        )
    return results
