"""Upstream: what a node sees of the outputs before it — its ancestors', read on demand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flowgraph.compile.validation import ValidGraph
from flowgraph.declare.names import scope_of

__all__ = ["Upstream"]


class Upstream(Mapping[str, Any]):
    """A read-only view of the outputs of one node's ancestors, built only if it is read.

    Copying every ancestor's output into each node's context made a chain quadratic. A node
    taken in from a subgraph (``sub.plan``) also sees its siblings by their own names
    (``{plan}`` in ``sub.build``'s task), as it did in its own graph.
    """

    def __init__(self, valid: ValidGraph, node: str, outputs: Mapping[str, Any]) -> None:
        self._valid, self._node, self._outputs = valid, node, outputs
        scope = scope_of(node) if "." in node else ""
        self._scope = scope + "." if scope else ""

    def _full(self, name: str) -> str | None:
        if not self._scope and name in self._valid.nodes[self._node].after:
            return name  # a direct dependency, the usual read: no walk over all ancestors
        ancestors = self._valid.ancestors(self._node)
        if self._scope and self._scope + name in ancestors:
            return self._scope + name
        return name if name in ancestors else None

    def __getitem__(self, name: str) -> Any:
        full = self._full(name)
        if full is None or full not in self._outputs:
            raise KeyError(name)
        return self._outputs[full]

    def __iter__(self) -> Iterator[str]:
        for name in self._valid.ancestors(self._node):
            if name in self._outputs:
                scoped = self._scope and name.startswith(self._scope)
                yield name[len(self._scope) :] if scoped else name

    def __len__(self) -> int:
        return sum(1 for _ in self)
