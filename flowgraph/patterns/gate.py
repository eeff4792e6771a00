"""Approval gate: what depends on it waits until a person approves; a rejection ends it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.nodes import GateNode
from flowgraph.errors import NodeError
from flowgraph.status import NodeStatus, Paused

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["run_gate"]


async def run_gate(node: GateNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Pass with the person's note, fail on a rejection, or pause until one of them comes."""
    record = env.record(node.name)
    decision = record.decision if record else None
    where = env.run_dir or "<run dir>"
    if decision is None:
        raise Paused(
            NodeStatus.WAITING_APPROVAL,
            f"waiting for approval{': ' + node.message if node.message else ''}; "
            f"`flowgraph approve {where} {node.name} --note ...` (or reject), then "
            f"`flowgraph resume {where}`",
        )
    note = str(decision.get("text") or "")
    if decision.get("kind") == "reject":
        raise NodeError(f"rejected by a person{': ' + note if note else ''}")
    return {"approved": True, "note": note}
