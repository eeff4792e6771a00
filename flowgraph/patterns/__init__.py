"""Patterns: nodes built from roles and steps — map, race, review loop, approval gate,
checklist, route. Each runs its work as *sub-records* of the ledger (``map[3]``,
``loop.review2``...) through the ``Env`` the run gives it, so finished work is never run or
paid for twice on resume. ``RUNNERS`` says which function runs which kind.

May import: ``declare`` and the layers below it (never the run that executes it: it gets an
``Env``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flowgraph.declare.context import Context
from flowgraph.declare.nodes import (
    ChecklistNode,
    GateNode,
    MapNode,
    RaceNode,
    ReviewLoopNode,
    RoutedNode,
    RouteNode,
)
from flowgraph.patterns.checklist import run_checklist
from flowgraph.patterns.env import Env
from flowgraph.patterns.gate import run_gate
from flowgraph.patterns.mapping import run_map
from flowgraph.patterns.race import run_race
from flowgraph.patterns.review import run_loop
from flowgraph.patterns.routing import run_route, run_routed

__all__ = ["RUNNERS", "Env", "PatternRunner"]

PatternRunner = Callable[[Any, Context, Env], Awaitable[Any]]

RUNNERS: dict[type, PatternRunner] = {
    MapNode: run_map,
    RaceNode: run_race,
    ReviewLoopNode: run_loop,
    GateNode: run_gate,
    ChecklistNode: run_checklist,
    RouteNode: run_route,
    RoutedNode: run_routed,
}
