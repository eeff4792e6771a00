"""How a graph's nodes are named when they are linked: ``NodeRef``, the handle ``Graph.node``
returns, whose ``>>`` makes one node run after another, and the targets it accepts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

from flowgraph.errors import GraphError

__all__ = ["Branch", "Linking", "NodeRef", "Target", "branch_names"]


class Linking(Protocol):
    """What a ``NodeRef`` links nodes in: a graph being declared."""

    def _add_dependency(self, node: str, dependency: str) -> None: ...


# What ``>>`` links: a node, a node's name, or a list of them.
Target: TypeAlias = "NodeRef | str | Sequence[NodeRef | str]"


class NodeRef:
    """A handle to a node, returned by ``Graph.node``; ``a >> b`` makes ``b`` run after ``a``.

    Either side may also be a node's name or a list of nodes and names:
    ``plan >> "review"``, ``plan >> [api, "ui"]``, ``["api", ui] >> tests``.
    """

    def __init__(self, graph: Linking, name: str) -> None:
        self.graph = graph
        self.name = name

    def __rshift__(self, other: Target) -> Target:
        for target in self._names(other, f"{self.name} >> ..."):
            self.graph._add_dependency(target, self.name)
        return other

    def __rrshift__(self, other: Target) -> NodeRef:
        for source in self._names(other, f"... >> {self.name}"):
            self.graph._add_dependency(self.name, source)
        return self

    def _names(self, other: object, where: str) -> list[str]:
        """The node names ``other`` stands for: a node, a name, or a list of them."""
        items = [other] if isinstance(other, NodeRef | str) else other
        if not isinstance(items, Sequence):
            items = [other]
        names = []
        for item in items:
            if isinstance(item, NodeRef):
                names.append(item.name)
            elif isinstance(item, str):
                names.append(item)
            else:
                raise GraphError(
                    f"`{where}`: {item!r} is not a node; link nodes (what graph.node returns), "
                    "their names, or lists of them"
                )
        return names

    def __repr__(self) -> str:
        return f"NodeRef({self.name!r})"


Branch = str | NodeRef | Sequence[str | NodeRef]
"""The nodes of one branch of a route: a node name or ``NodeRef``, or a sequence of them."""


def branch_names(nodes: Branch) -> tuple[str, ...]:
    """A branch's node names: one name or ``NodeRef``, or a sequence of them."""
    many = [nodes] if isinstance(nodes, str | NodeRef) else list(nodes)
    return tuple(n.name if isinstance(n, NodeRef) else n for n in many)
