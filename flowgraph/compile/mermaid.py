"""The Mermaid picture of a validated graph (``flowgraph show``): one shape per node kind,
subgraphs as Mermaid subgraphs, a dotted edge from a review loop back to the node it sends
work to."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowgraph.declare.names import scope_of
from flowgraph.declare.nodes import Node, ReviewLoopNode

__all__ = ["render"]


def _role(n: Any) -> str:
    return f'["{n.name}<br/>{n.role.name} · {n.model}"]'


def _step(n: Any) -> str:
    return f'[["{n.name}<br/>step {getattr(n.func, "__name__", "?")}"]]'


def _map(n: Any) -> str:
    return f'[/"{n.name}<br/>map over {n.over}"/]'


def _race(n: Any) -> str:
    return f'{{{{"{n.name}<br/>race: {" vs ".join(n.labels)}"}}}}'


def _loop(n: Any) -> str:
    return f'(["{n.name}<br/>review loop, at most {n.max_rounds} rounds"])'


def _gate(n: Any) -> str:
    return f'{{"{n.name}<br/>approval gate"}}'


def _checklist(n: Any) -> str:
    return f'[("{n.name}<br/>checklist")]'


SHAPES: dict[str, Callable[[Any], str]] = {
    "role": _role,
    "step": _step,
    "map": _map,
    "race": _race,
    "loop": _loop,
    "gate": _gate,
    "checklist": _checklist,
}


def render(order: Sequence[str], nodes: Mapping[str, Node]) -> str:
    """Mermaid flowchart text for ``nodes`` in ``order``."""
    lines = ["flowchart TD"]
    groups: dict[str, list[str]] = {}
    for name in order:
        node = nodes[name]
        groups.setdefault(scope_of(name), []).append(f"    {_id(name)}{SHAPES[node.kind](node)}")
    lines += groups.pop("", [])
    for scope, shapes in groups.items():
        lines += [f'    subgraph {_id(scope)}_sub["{scope}"]', *shapes, "    end"]
    for name in order:
        node = nodes[name]
        target = _id(name)
        lines.extend(f"    {_id(d)} --> {target}" for d in node.after)
        if isinstance(node, ReviewLoopNode):
            lines.append(f"    {target} -. changes requested .-> {_id(node.work_name)}")
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "__", name)
