"""The Mermaid picture of a validated graph (``flowgraph show``): one shape per node kind,
subgraphs as Mermaid subgraphs, a dotted edge from a review loop back to the node it sends
work to, and a route's edges labelled with the branch they belong to."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowgraph.declare.names import scope_of, top_of
from flowgraph.declare.nodes import Node, ReviewLoopNode, RouteNode

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


def _route(n: Any) -> str:
    return f'{{"{n.name}<br/>route: {" | ".join(n.labels)}"}}'


def _routed(n: Any) -> str:
    picks = ", ".join(f"{c.name.rpartition('.')[2]} → {c.model}" for c in n.choices)
    return f'[/"{n.name}<br/>{n.choices[0].role.name}, routed: {picks}"\\]'


SHAPES: dict[str, Callable[[Any], str]] = {
    "role": _role,
    "step": _step,
    "map": _map,
    "race": _race,
    "loop": _loop,
    "gate": _gate,
    "checklist": _checklist,
    "route": _route,
    "routed": _routed,
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
        lines.extend(f"    {_id(d)} {_arrow(nodes[d], name)} {target}" for d in node.after)
        if isinstance(node, ReviewLoopNode):
            lines.append(f"    {target} -. changes requested .-> {_id(node.work_name)}")
    return "\n".join(lines) + "\n"


def _arrow(source: Node, target: str) -> str:
    """``-->``, or ``-->|easy|`` from a route to a node of its ``easy`` branch."""
    if not isinstance(source, RouteNode):
        return "-->"
    labels = [label for label, nodes in source.branches.items()
              if target in nodes or top_of(target) in nodes]  # fmt: skip
    return f"-->|{', '.join(labels)}|" if labels else "-->"


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "__", name)
