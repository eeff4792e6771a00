"""Patterns: nodes built from roles and steps — map, race, review loop, approval gate,
checklist. Each runs its work as *sub-records* of the ledger (``map[3]``, ``loop.review2``...)
through the runner's ``Env``, so finished work is never run or paid for twice on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from flowgraph.declare.context import Context
from flowgraph.declare.nodes import ChecklistNode, GateNode, MapNode, RaceNode, ReviewLoopNode, Work
from flowgraph.ledger.store import LedgerDoc, NodeRecord

__all__ = ["Env", "execute"]


class Env(Protocol):
    """What a pattern may use of the run executing it."""

    run_dir: Path | None
    workspace: Path
    doc: LedgerDoc
    max_items: int | None

    def record(self, name: str) -> NodeRecord | None: ...

    def update(self, name: str, **fields: Any) -> None: ...

    def update_run(self, **fields: Any) -> None: ...

    async def run_unit(
        self, record: str, unit: Work, ctx: Context, *, parent: str, key: str
    ) -> Any:
        """Run a role or step as sub-record ``record`` of ``parent``; a passed record with
        the same definition and ``key`` is returned from the ledger instead of run again."""
        ...


async def execute(node: Any, ctx: Context, env: Env) -> Any:
    """Run a pattern node."""
    from flowgraph.patterns import checklist, gate, mapping, race, review

    if isinstance(node, MapNode):
        return await mapping.run_map(node, ctx, env)
    if isinstance(node, RaceNode):
        return await race.run_race(node, ctx, env)
    if isinstance(node, ReviewLoopNode):
        return await review.run_loop(node, ctx, env)
    if isinstance(node, GateNode):
        return gate.run_gate(node, env)
    if isinstance(node, ChecklistNode):
        return await checklist.run_checklist(node, ctx, env)
    raise TypeError(f"no pattern runs a {type(node).__name__}")
