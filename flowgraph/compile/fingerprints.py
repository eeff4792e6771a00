"""Fingerprints: per node, a hash of its definition and of its upstream nodes' fingerprints.

A resume reuses a passed node only when its fingerprint is unchanged, so whatever defines what a
node does must be in its ``spec()``: role, task, model, advisor, the source of its step, tools
and checks (``flowgraph.declare.identity``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from flowgraph.declare.nodes import Node, StepNode

__all__ = ["fingerprint_of", "node_fingerprints"]


def node_fingerprints(order: Sequence[str], nodes: Mapping[str, Node]) -> dict[str, str]:
    """Each node's fingerprint, in topological ``order``."""
    prints: dict[str, str] = {}
    encoded: dict[int, bytes] = {}  # many nodes share one step function: encode it once
    for name in order:
        node = nodes[name]
        if type(node) is StepNode:
            spec = encoded.get(id(node.func))
            if spec is None:
                spec = encoded[id(node.func)] = _encode(node.spec())
        else:
            spec = _encode(node.spec())
        digest = hashlib.sha256(spec)
        for dep in sorted(node.after):  # fed piecewise: no JSON of a wide fan-in per node
            digest.update(f"\0{dep}\0{prints[dep]}".encode())
        prints[name] = digest.hexdigest()[:24]
    return prints


def fingerprint_of(graph: str, prints: Mapping[str, str]) -> str:
    """A hash of the whole graph: its name and every node's fingerprint."""
    blob = json.dumps([graph, sorted(prints.items())]).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _encode(spec: Mapping[str, Any]) -> bytes:
    return json.dumps(spec, sort_keys=True, default=str).encode()
