"""Validation: a declared graph checked as a whole and turned into a ``ValidGraph`` — nodes with
resolved dependencies (subgraphs taken in), topological order, fingerprints, and its Mermaid
picture. Every mistake is a ``GraphError`` that says how to fix it, raised before anything runs.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from flowgraph.compile import mermaid
from flowgraph.compile.fingerprints import fingerprint_of, node_fingerprints
from flowgraph.declare import templates
from flowgraph.declare.aliases import MODEL_ALIASES
from flowgraph.declare.builder import Declaration, Subgraph
from flowgraph.declare.context import Context
from flowgraph.declare.names import scope_of, scoped
from flowgraph.declare.nodes import Node, RoleNode, RouteNode, Step, StepNode
from flowgraph.errors import GraphError
from flowgraph.models.endpoints import prefix_of
from flowgraph.money.pricing import Pricing

__all__ = ["UnpricedModelWarning", "ValidGraph"]


class UnpricedModelWarning(UserWarning):
    """A model the graph uses has no price: the run goes ahead, but what it costs will read
    "unknown" (a misspelt model id is the usual cause). Silence it with
    ``warnings.filterwarnings("ignore", category=UnpricedModelWarning)``."""


@dataclass(frozen=True)
class ValidGraph:
    """A checked graph: nodes with resolved dependencies, topological order and fingerprints."""

    name: str
    inputs: Mapping[str, Any]
    nodes: Mapping[str, Node]
    order: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, graph: Declaration) -> ValidGraph:
        """Check ``graph`` as a whole; raise ``GraphError`` on the first mistake."""
        if not graph.declared:
            raise GraphError(
                f"graph {graph.name!r} has no nodes; add one with graph.node(name, role, task)"
            )
        declared = _take_in_subgraphs(graph)
        names = list(declared)
        top = [n for n in names if n in graph.declared]
        dependents: dict[str, list[str]] = {n: [] for n in names}
        position = {n: i for i, n in enumerate(names)}
        nodes: dict[str, Node] = {}
        in_order = True  # is the declaration order already a topological order?
        for mine, (name, (node, after)) in enumerate(declared.items()):
            for dep in after:
                where = position.get(dep, -1)
                if not 0 <= where < mine:  # rare: unknown, itself, or declared after it
                    if where < 0:
                        raise GraphError(
                            f"node {name!r} depends on {dep!r}, which does not exist; "
                            f"nodes are: {', '.join(top)}"
                        )
                    if dep == name:
                        raise GraphError(f"node {name!r} depends on itself; remove it from after=")
                    in_order = False
                dependents[dep].append(name)
            nodes[name] = node.with_after(tuple(after))
        for name, node in nodes.items():
            if node.links:
                nodes[name] = node.link(nodes)
        # Declared in dependency order (the usual case), the order is the declaration order:
        # exactly what Kahn's algorithm with declaration-order ties would give.
        order = tuple(names) if in_order else _topological_order(names, nodes, dependents)
        if len(order) < len(names):
            raise GraphError(
                f"graph {graph.name!r} has a cycle: {_cycle_path(nodes)}; remove one of these "
                "dependencies (for review rounds use a bounded loop)"
            )
        dependents_of = {k: tuple(v) for k, v in dependents.items()}
        valid = cls(graph.name, dict(graph.inputs), nodes, order, dependents_of)
        valid._check_templates()
        valid._check_joins()
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

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        """Per node, a hash of its definition and of its upstream fingerprints."""
        return node_fingerprints(self.order, self.nodes)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the whole graph: its name and every node's fingerprint."""
        return fingerprint_of(self.name, self.fingerprints)

    def render(self) -> str:
        """Mermaid flowchart text."""
        return mermaid.render(self.order, self.nodes)

    def unpriced(self, pricing: Pricing) -> list[str]:
        """A warning for each model the graph uses that ``pricing`` has no price for, with
        the alias or priced model id it is closest to, if any.

        A warning, not an error: an endpoint may serve models the table does not know (a
        gateway's ``openai/gpt-5.5``); giving such a model a price (under its id, or as
        ``endpoint:id``) silences it.
        """
        users: dict[str, list[str]] = {}
        for name, node in self.nodes.items():
            for role_node, _ in node.role_tasks():
                for model in _models_of(role_node):
                    if model not in pricing and name not in users.setdefault(model, []):
                        users[model].append(name)
        known = [*MODEL_ALIASES, *pricing.table()]
        found = []
        for model, nodes in users.items():
            bare = model[len(prefix_of(model)) :]  # "gateway:claude-sonet-4-6" -> the id
            near = difflib.get_close_matches(bare, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            found.append(
                f"model {model!r} (node {', '.join(nodes)}) has no price, so its cost will read "
                f"unknown; {hint}aliases: {', '.join(MODEL_ALIASES)}; if the id is right, "
                "give it a price: Graph(pricing=Pricing.default().with_prices(...)) or "
                "`flowgraph run --prices FILE`"
            )
        return found

    def _check_templates(self) -> None:
        for name, node in self.nodes.items():
            if type(node) is StepNode or scope_of(name):
                continue  # no template; or a subgraph's node, checked by its own graph
            for role_node, extra in node.role_tasks():
                self._check_template(name, role_node.task, extra)

    def _check_template(self, name: str, task: str, extra: frozenset[str]) -> None:
        for field in templates.fields(task, where=f"node {name!r}"):
            root = field.root
            if not root.isidentifier():
                raise GraphError(
                    f"node {name!r}'s task has {{{field.text}}}, which is not a field name; if "
                    "those braces are literal text (JSON, say), double them: {{ and }}"
                )
            if root in self.ancestors(name):
                self._check_path(name, field)
                continue
            if root in self.inputs or root in extra:
                continue
            if root in self.nodes:
                raise GraphError(
                    f"node {name!r}'s task uses {{{root}}}, but {root!r} is not upstream of "
                    f"it; add after=[{root!r}] to node {name!r}"
                )
            inputs = ", ".join(self.inputs) or "none declared"
            raise GraphError(
                f"node {name!r}'s task uses {{{root}}}, which no upstream node or input "
                f"provides; inputs: {inputs}; declare it with Graph(..., inputs=[{root!r}]) "
                "or fix the name"
            )

    def _check_joins(self) -> None:
        """A node that joins the branches of a route runs with only one of them taken, so its
        task cannot name a branch node: ``{expert}`` has no output when ``quick`` ran."""
        for route in self.nodes.values():
            if type(route) is not RouteNode:
                continue
            for name in self.descendants(route.name):
                tasks = self.nodes[name].role_tasks()
                ancestors = self.ancestors(name)
                reached = [lb for lb, nodes in route.branches.items() if ancestors & set(nodes)]
                if len(reached) < 2 or not tasks:
                    continue  # inside one branch: its branch nodes were taken when it runs
                for task, _ in tasks:
                    for used in templates.roots(task.task) & ancestors:
                        missing = [lb for lb in reached if used in route.not_chosen(lb)]
                        if missing:
                            raise GraphError(
                                f"node {name!r} joins the branches of route {route.name!r}, "
                                f"but its task uses {{{used}}}, which has no output when "
                                f"{route.name!r} chooses {missing[0]!r}; drop it from the task "
                                "(the outputs of the branch that ran are shown to the role "
                                "anyway), or read ctx.outputs in a step"
                            )

    def _check_path(self, name: str, field: templates.Field) -> None:
        """``{plan.stpes}`` where ``plan``'s structured output has no ``stpes``: caught now,
        not after ``plan`` was paid for."""
        upstream = self.nodes[field.root]
        model: Any = upstream.role.output if type(upstream) is RoleNode else None
        for step in field.path:
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                return  # free text, a list, a dict...: not checked further
            known = model.model_fields
            if step not in known:
                near = difflib.get_close_matches(step, known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise GraphError(
                    f"node {name!r}'s task uses {{{field.text}}}, but {model.__name__} (the "
                    f"output of {field.root!r}) has no field {step!r}; {hint}its fields are: "
                    f"{', '.join(known)}"
                )
            model = known[step].annotation


def _models_of(node: RoleNode) -> tuple[str, ...]:
    """Every model a role node may call: its own, its fallbacks, its advisor's."""
    advisor = (node.advisor_model, *node.advisor_fallbacks) if node.advisor else ()
    return (node.model, *node.fallbacks, *node.server_fallbacks, *advisor)


def _take_in_subgraphs(graph: Declaration) -> dict[str, tuple[Any, list[str]]]:
    """Every node with its dependencies; a subgraph's nodes come in as ``<sub>.<node>`` and
    the subgraph's own name becomes a step that gathers the outputs of its last nodes."""
    declared = graph.declared
    if not any(isinstance(d.node, Subgraph) for d in declared.values()):
        return {name: (d.node, d.after) for name, d in declared.items()}
    taken: dict[str, tuple[Any, list[str]]] = {}
    for name, entry in declared.items():
        if not isinstance(entry.node, Subgraph):
            taken[name] = (entry.node, entry.after)
            continue
        child = ValidGraph.build(entry.node.graph)
        missing = [k for k in child.inputs if k not in graph.inputs]
        if missing:
            raise GraphError(
                f"subgraph {name!r} needs input {', '.join(missing)}; declare it on graph "
                f"{graph.name!r} with inputs=[...]"
            )
        for local in child.order:
            node = child.nodes[local]
            deps = [scoped(name, d) for d in node.after] or list(entry.after)
            taken[scoped(name, local)] = (replace(node, name=scoped(name, local)), deps)
        sinks = [n for n in child.order if not child.dependents[n]]
        taken[name] = (StepNode(name, _gather(name, sinks)), [scoped(name, s) for s in sinks])
    return taken


def _gather(prefix: str, sinks: list[str]) -> Step:
    async def gather_subgraph(ctx: Context) -> dict[str, Any]:
        # A sink on a branch its route did not take has no output: it is left out.
        found = {local: scoped(prefix, local) for local in sinks}
        return {local: ctx.outputs[name] for local, name in found.items() if name in ctx.outputs}

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
