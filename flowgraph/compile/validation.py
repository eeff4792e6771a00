"""Validation: a declared ``Graph`` checked as a whole and turned into a ``ValidGraph`` —
nodes with resolved dependencies (subgraphs taken in), topological order, fingerprints, and
its Mermaid picture. Every mistake is a ``GraphError`` that says how to fix it, raised before
anything runs.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from flowgraph.declare.context import Context
from flowgraph.declare.nodes import (
    ChecklistNode,
    GateNode,
    MapNode,
    Node,
    RaceNode,
    ReviewLoopNode,
    RoleNode,
    Step,
    StepNode,
)
from flowgraph.errors import GraphError
from flowgraph.graph import Graph, Subgraph

__all__ = ["ValidGraph", "role_tasks", "template_fields"]


@dataclass(frozen=True)
class ValidGraph:
    """A checked graph: nodes with resolved dependencies, topological order and fingerprints."""

    name: str
    graph: Graph
    nodes: Mapping[str, Node]
    order: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, graph: Graph) -> ValidGraph:
        if not graph._declared:
            raise GraphError(
                f"graph {graph.name!r} has no nodes; add one with graph.node(name, role, task)"
            )
        declared = _take_in_subgraphs(graph)
        names = list(declared)
        top = [n for n in names if n in graph._declared]
        dependents: dict[str, list[str]] = {n: [] for n in names}
        position = {n: i for i, n in enumerate(names)}
        nodes: dict[str, Node] = {}
        in_order = True  # is the declaration order already a topological order?
        for name, (node, after) in declared.items():
            for dep in after:
                where = position.get(dep)
                if where is None:
                    raise GraphError(
                        f"node {name!r} depends on {dep!r}, which does not exist; "
                        f"nodes are: {', '.join(top)}"
                    )
                if dep == name:
                    raise GraphError(f"node {name!r} depends on itself; remove it from after=")
                in_order = in_order and where < position[name]
                dependents[dep].append(name)
            nodes[name] = node.with_after(tuple(after))
        if any(isinstance(n, ReviewLoopNode) for n in nodes.values()):
            _link_review_loops(nodes)
        # Declared in dependency order (the usual case), the order is the declaration order:
        # exactly what Kahn's algorithm with declaration-order ties would give.
        order = tuple(names) if in_order else _topological_order(names, nodes, dependents)
        if len(order) < len(names):
            raise GraphError(
                f"graph {graph.name!r} has a cycle: {_cycle_path(nodes)}; remove one of these "
                "dependencies (for review rounds use a bounded loop)"
            )
        valid = cls(graph.name, graph, nodes, order, {k: tuple(v) for k, v in dependents.items()})
        valid._check_templates()
        return valid

    def ancestors(self, name: str) -> frozenset[str]:
        """The nodes upstream of ``name`` (transitively), computed on first use."""
        cache: dict[str, frozenset[str]] = self.__dict__.setdefault("_ancestors", {})
        found = cache.get(name)
        if found is None:
            seen: set[str] = set()
            stack = list(self.nodes[name].after)
            while stack:
                dep = stack.pop()
                if dep not in seen:
                    seen.add(dep)
                    stack.extend(self.nodes[dep].after)
            found = cache[name] = frozenset(seen)
        return found

    def _check_templates(self) -> None:
        for name, node in self.nodes.items():
            if type(node) is StepNode or "." in name:
                continue  # no template; or a subgraph's node, checked by its own graph
            for role_node, extra in role_tasks(node):
                self._check_template(name, role_node.task, extra)

    def _check_template(self, name: str, task: str, extra: frozenset[str]) -> None:
        for root in template_fields(task, where=f"node {name!r}"):
            if root in self.graph.inputs or root in extra or root in self.ancestors(name):
                continue
            if root in self.nodes:
                raise GraphError(
                    f"node {name!r}'s task uses {{{root}}}, but {root!r} is not upstream of "
                    f"it; add after=[{root!r}] to node {name!r}"
                )
            inputs = ", ".join(self.graph.inputs) or "none declared"
            raise GraphError(
                f"node {name!r}'s task uses {{{root}}}, which no upstream node or input "
                f"provides; inputs: {inputs}; declare it with Graph(..., inputs=[{root!r}]) "
                "or fix the name"
            )

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """Per node, a hash of its definition and of its upstream fingerprints."""
        prints: dict[str, str] = {}
        encoded: dict[int, bytes] = {}  # many nodes share one step function: encode it once
        for name in self.order:
            node = self.nodes[name]
            if isinstance(node, StepNode):
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

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the whole graph: its name and every node's fingerprint."""
        blob = json.dumps([self.name, sorted(self.fingerprints.items())]).encode()
        return hashlib.sha256(blob).hexdigest()[:24]

    def descendants(self, name: str) -> set[str]:
        """The nodes downstream of ``name``."""
        seen: set[str] = set()
        stack = list(self.dependents[name])
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.add(child)
                stack.extend(self.dependents[child])
        return seen

    def render(self) -> str:
        """Mermaid flowchart text: one shape per node kind, subgraphs as Mermaid subgraphs,
        and a dotted edge from a review loop back to the node it sends work to."""
        lines = ["flowchart TD"]
        groups: dict[str, list[str]] = {}
        for name in self.order:
            shape = f"    {_mermaid_id(name)}{_shape(self.nodes[name])}"
            scope = name.rsplit(".", 1)[0] if "." in name else ""
            groups.setdefault(scope, []).append(shape)
        lines += groups.pop("", [])
        for scope, shapes in groups.items():
            lines += [f'    subgraph {_mermaid_id(scope)}_sub["{scope}"]', *shapes, "    end"]
        for name in self.order:
            node = self.nodes[name]
            target = _mermaid_id(name)
            lines.extend(f"    {_mermaid_id(d)} --> {target}" for d in node.after)
            if isinstance(node, ReviewLoopNode):
                lines.append(f"    {target} -. changes requested .-> {_mermaid_id(node.work_name)}")
        return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "__", name)


def _shape(node: Node) -> str:
    """The Mermaid shape and label of one node."""
    if isinstance(node, RoleNode):
        return f'["{node.name}<br/>{node.role.name} · {node.model}"]'
    if isinstance(node, StepNode):
        return f'[["{node.name}<br/>step {getattr(node.func, "__name__", "?")}"]]'
    if isinstance(node, MapNode):
        return f'[/"{node.name}<br/>map over {node.over}"/]'
    if isinstance(node, RaceNode):
        names = " vs ".join(c.name.rsplit(".", 1)[-1] for c in node.contenders)
        return f'{{{{"{node.name}<br/>race: {names}"}}}}'
    if isinstance(node, ReviewLoopNode):
        return f'(["{node.name}<br/>review loop, at most {node.max_rounds} rounds"])'
    if isinstance(node, GateNode):
        return f'{{"{node.name}<br/>approval gate"}}'
    return f'[("{node.name}<br/>checklist")]'


def _encode(spec: Mapping[str, Any]) -> bytes:
    return json.dumps(spec, sort_keys=True, default=str).encode()


def role_tasks(node: Node) -> list[tuple[RoleNode, frozenset[str]]]:
    """The role tasks a node renders, each with the names its pattern adds to templates."""
    if isinstance(node, RoleNode):
        return [(node, frozenset())]
    if isinstance(node, MapNode | ChecklistNode) and isinstance(node.work, RoleNode):
        found = [(node.work, frozenset({"item", "index"}))]
        if isinstance(node, ChecklistNode) and isinstance(node.init, RoleNode):
            found.append((node.init, frozenset()))
        return found
    if isinstance(node, RaceNode):
        judge = [(node.judge, frozenset({"contenders"}))] if node.judge else []
        return [(c, frozenset()) for c in node.contenders] + judge
    if isinstance(node, ReviewLoopNode):
        return [(node.review, frozenset({"work", "round"}))]
    return []


def _link_review_loops(nodes: dict[str, Node]) -> None:
    """Give each review loop the role node it sends work back to."""
    for name, node in nodes.items():
        if not isinstance(node, ReviewLoopNode):
            continue
        work = nodes.get(node.work_name)
        if not isinstance(work, RoleNode):
            kind = "does not exist" if work is None else f"is a {work.kind} node, not a role"
            raise GraphError(
                f"review loop {name!r} sends work back to {node.work_name!r}, which {kind}; "
                "name an earlier role node as work="
            )
        nodes[name] = replace(node, work=work)


def _take_in_subgraphs(graph: Graph) -> dict[str, tuple[Any, list[str]]]:
    """Every node with its dependencies; a subgraph's nodes come in as ``<sub>.<node>`` and
    the subgraph's own name becomes a step that gathers the outputs of its last nodes."""
    if not any(isinstance(d.node, Subgraph) for d in graph._declared.values()):
        return {name: (d.node, d.after) for name, d in graph._declared.items()}
    taken: dict[str, tuple[Any, list[str]]] = {}
    for name, declared in graph._declared.items():
        if not isinstance(declared.node, Subgraph):
            taken[name] = (declared.node, declared.after)
            continue
        child = declared.node.graph.validate()
        missing = [k for k in child.graph.inputs if k not in graph.inputs]
        if missing:
            raise GraphError(
                f"subgraph {name!r} needs input {', '.join(missing)}; declare it on graph "
                f"{graph.name!r} with inputs=[...]"
            )
        for local in child.order:
            node = child.nodes[local]
            deps = [f"{name}.{d}" for d in node.after] or list(declared.after)
            taken[f"{name}.{local}"] = (replace(node, name=f"{name}.{local}"), deps)
        sinks = [n for n in child.order if not child.dependents[n]]
        taken[name] = (StepNode(name, _gather(name, sinks)), [f"{name}.{s}" for s in sinks])
    return taken


def _gather(prefix: str, sinks: list[str]) -> Step:
    async def gather_subgraph(ctx: Context) -> dict[str, Any]:
        return {local: ctx.outputs[f"{prefix}.{local}"] for local in sinks}

    return gather_subgraph


def _topological_order(
    names: list[str], nodes: Mapping[str, Node], dependents: Mapping[str, list[str]]
) -> tuple[str, ...]:
    """Kahn's algorithm, ties broken by declaration order; shorter than ``names`` on a cycle.

    Plain Python rather than networkx here: on a 1,000-node layered graph networkx's cycle
    search alone took seconds, and every run validates its graph.
    """
    waiting = {n: len(nodes[n].after) for n in names}
    position = {n: i for i, n in enumerate(names)}
    ready = [position[n] for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in dependents[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    return tuple(order)


def _cycle_path(nodes: Mapping[str, Node]) -> str:
    """Name one cycle, e.g. ``a -> b -> a`` (networkx finds it; only on the error path)."""
    import networkx as nx

    dag = nx.DiGraph((dep, name) for name, node in nodes.items() for dep in node.after)
    cycle = nx.find_cycle(dag)
    return " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])


def template_fields(template: str, *, where: str) -> list[str]:
    """The root names a task template refers to (``{plan.api}`` -> ``plan``)."""
    roots: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise GraphError(
            f"{where}: task template is malformed ({exc}); write literal braces as {{{{ and }}}}"
        ) from exc
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if not root:
            raise GraphError(
                f"{where}: task template has an empty or positional field {{{field_name}}}; "
                "name an input or upstream node, e.g. {feature}"
            )
        roots.append(root)
    return roots
