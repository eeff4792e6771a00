"""Names: what a node may be called, and the record names made from node names.

A top-level node is ``plan``. A node taken in from a subgraph, or a part of a pattern (a race's
contender, a review round), is *scoped* with a dot: ``team.plan``, ``loop.review2``. An item of a
map or a checklist is *indexed* with brackets: ``fan[3]``, ``todo[write the docs]`` (the key
may hold any character, dots included). The ledger keeps records under these names.
"""

from __future__ import annotations

import re

__all__ = ["indexed", "is_node_name", "local_of", "node_path", "scope_of", "scoped", "top_of"]

_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_node_name(name: object) -> bool:
    """Letters, digits and ``_``, starting with a letter or ``_``."""
    return isinstance(name, str) and _NODE_NAME.match(name) is not None


def scoped(scope: str, local: str) -> str:
    """``scope.local``: a subgraph's node, or a pattern's part."""
    return f"{scope}.{local}"


def indexed(parent: str, key: object) -> str:
    """``parent[key]``: one item of a map or a checklist."""
    return f"{parent}[{key}]"


def node_path(record: str) -> str:
    """The record name without an item index: ``fan[3]`` -> ``fan``."""
    return record.split("[", 1)[0]


def scope_of(record: str) -> str:
    """What ``record`` is scoped in (``""`` at the top): ``team.plan`` -> ``team``."""
    return node_path(record).rpartition(".")[0]


def local_of(record: str) -> str:
    """The last part of a scoped name: ``race.fast`` -> ``fast``."""
    return node_path(record).rpartition(".")[2]


def top_of(record: str) -> str:
    """The top-level node a record belongs to: ``team.loop.review2`` -> ``team``."""
    return node_path(record).split(".", 1)[0]
