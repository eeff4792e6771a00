"""Declaration: building a graph — named nodes (a role with a task, an async function step, a
pattern, or a whole subgraph) and their dependencies.

Each node is checked as it is added (its name, models, function kinds); the whole is checked by
``flowgraph.compile`` before anything runs. ``flowgraph.Graph`` is this plus the verbs that
move a declaration on to the next phases (``validate``, ``run``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flowgraph.declare.advisor import Advisor
from flowgraph.declare.aliases import INHERIT, resolve_model, strength
from flowgraph.declare.context import Context
from flowgraph.declare.names import is_node_name, scoped
from flowgraph.declare.nodes import (
    ChecklistNode,
    GateNode,
    MapNode,
    Node,
    RaceNode,
    ReviewLoopNode,
    RoleNode,
    RoutedNode,
    RouteNode,
    Step,
    StepNode,
    Work,
)
from flowgraph.declare.refs import Branch, NodeRef, branch_names
from flowgraph.declare.role import Role
from flowgraph.errors import GraphError
from flowgraph.models.endpoints import on_endpoint

__all__ = ["Declaration", "Declared", "NodeRef", "Subgraph"]

JUDGE_TASK = (
    "Several attempts at the same task produced these results, by name:\n{contenders}\n"
    "Reply with only the name of the best one."
)
REVIEW_TASK = "Review this work (round {round}):\n{work}\nApprove it, or request specific changes."
ROUTE_ASK = "\n\nAnswer with only one of these labels: {labels}."


@dataclass(frozen=True)
class Subgraph:
    """A graph used as a node; its nodes are taken in when the parent is validated."""

    name: str
    graph: Declaration


@dataclass
class Declared:
    """One declared node and the names of the nodes it runs after."""

    node: Node | Subgraph
    after: list[str] = field(default_factory=list)


class Declaration:
    """A graph being declared: its name, inputs, defaults and nodes.

    Args:
        name: the graph's name; a ledger records it and refuses to resume another graph's run.
        model: the default model for role nodes whose role says ``model="inherit"``.
        inputs: names of the run input fields that task templates may use; a mapping gives
            defaults (use ``...`` for a required field).
        advisor: the default ``Advisor`` for roles that say ``advisor="inherit"`` (the default).
    """

    def __init__(
        self,
        name: str,
        *,
        model: str = "sonnet",
        inputs: Sequence[str] | Mapping[str, Any] = (),
        advisor: Advisor | None = None,
    ) -> None:
        if not name:
            raise GraphError("a graph needs a name, e.g. Graph('feature_team')")
        self.name = name
        self.default_model = resolve_model(model, where=f"graph {name!r}")
        self.inputs: dict[str, Any] = (
            dict(inputs) if isinstance(inputs, Mapping) else {k: ... for k in inputs}
        )
        self.advisor = advisor
        self._declared: dict[str, Declared] = {}
        # Branch nodes of a route that are not declared yet, with the routes they run after.
        self._routed_later: dict[str, list[str]] = {}
        self._version = 0  # bumped by every change, so a validated form knows it is stale

    @property
    def declared(self) -> Mapping[str, Declared]:
        """The nodes as declared, in declaration order (read them; change them with the
        building methods)."""
        return self._declared

    @property
    def version(self) -> int:
        """How many changes the declaration has had."""
        return self._version

    # -- building ---------------------------------------------------------------------------

    def node(
        self,
        name: str,
        what: Role | Step | Declaration,
        task: str | None = None,
        *,
        after: Iterable[str | NodeRef] = (),
        timeout: float | None = None,
        retries: int = 0,
    ) -> NodeRef:
        """Add a node: a ``Role`` with its ``task`` template, or an async function step.

        Args:
            name: a unique identifier (letters, digits, ``_``); templates refer to it as ``{name}``.
            what: the role to run, an ``async def step(ctx: Context)`` function, or a whole
                ``Graph`` (a subgraph: its nodes are recorded as ``<name>.<node>``).
            task: for a role, the task template; ``{field}`` takes a run input field or an
                upstream node's output (``{plan.endpoints}`` reaches into structured output).
            after: nodes that must pass first.
            timeout: for a function step, seconds it may take (a role has its own ``timeout``).
            retries: for a function step, retries on failure (a role has its own ``retries``).
        """
        self._check_new_name(name)
        if isinstance(what, Declaration):
            if task is not None:
                raise GraphError(f"node {name!r}: a subgraph takes no task; remove it")
            return self._declare(name, Subgraph(name, what), after)
        return self._declare(name, self._unit(name, what, task, timeout, retries), after)

    def _declare(self, name: str, node: Node | Subgraph, after: Iterable[str | NodeRef]) -> NodeRef:
        deps = [d.name if isinstance(d, NodeRef) else d for d in after]
        deps += [r for r in self._routed_later.pop(name, ()) if r not in deps]
        self._declared[name] = Declared(node, deps)
        self._version += 1
        return NodeRef(self, name)

    def _unit(
        self, name: str, what: Any, task: str | None, timeout: float | None = None, retries: int = 0
    ) -> Work:
        if isinstance(what, Role):
            return self._role_node(name, what, task)
        return self._step_node(name, what, task, timeout, retries)

    # -- patterns ---------------------------------------------------------------------------

    def map(
        self,
        name: str,
        work: Role | Step,
        task: str | None = None,
        *,
        over: str,
        after: Iterable[str | NodeRef] = (),
        concurrency: int | None = None,
        on_error: Literal["fail", "continue"] = "fail",
    ) -> NodeRef:
        """Run ``work`` once per item of the list ``over`` (an upstream node or an input).

        A role's task may use ``{item}`` and ``{index}``; a step reads ``ctx.item``. Results
        come back as a list in input order. Each item is its own ledger record
        (``name[i]``): a resume runs only the items that did not pass.
        """
        self._check_new_name(name)
        if concurrency is not None and concurrency < 1:
            raise GraphError(f"map {name!r}: concurrency must be at least 1 or None")
        if on_error not in ("fail", "continue"):
            raise GraphError(f"map {name!r}: on_error must be 'fail' or 'continue'")
        deps = list(after)
        if over not in self.inputs:
            deps.append(over)  # an upstream node; validation says so if it is not one
        node = MapNode(name, over, self._unit(name, work, task), (), concurrency, on_error)
        return self._declare(name, node, deps)

    def race(
        self,
        name: str,
        contenders: Sequence[Role],
        task: str,
        *,
        check: Callable[[Any, Context], Awaitable[bool]] | None = None,
        judge: Role | None = None,
        judge_task: str = JUDGE_TASK,
        cancel_rest: bool = True,
        after: Iterable[str | NodeRef] = (),
    ) -> NodeRef:
        """The same ``task`` on several roles (other models, advisor on or off, prompts), each
        in its own copy of the workspace; ``check`` or ``judge`` picks the winner."""
        self._check_new_name(name)
        if len(contenders) < 2:
            raise GraphError(f"race {name!r}: give at least two contenders")
        if check is None and judge is None:
            raise GraphError(f"race {name!r}: give a check function or a judge role")
        if check is not None and not inspect.iscoroutinefunction(check):
            raise GraphError(f"race {name!r}: check must be `async def check(output, ctx)`")
        labels = [r.name for r in contenders]
        labels = [f"{lb}_{i}" if labels.count(lb) > 1 else lb for i, lb in enumerate(labels)]
        roles = tuple(
            self._role_node(scoped(name, label), role, task)
            for label, role in zip(labels, contenders, strict=True)
        )
        judge_node = self._role_node(scoped(name, "judge"), judge, judge_task) if judge else None
        node = RaceNode(name, roles, check, judge_node, cancel_rest)
        return self._declare(name, node, after)

    def review_loop(
        self,
        name: str,
        review: Role,
        task: str = REVIEW_TASK,
        *,
        work: str | NodeRef,
        max_rounds: int = 3,
        on_give_up: Literal["fail", "pass"] = "fail",
        after: Iterable[str | NodeRef] = (),
    ) -> NodeRef:
        """A reviewer judges node ``work``'s output; "changes requested" sends the work back to
        that node's role with the review attached, at most ``max_rounds`` rounds.

        The reviewer approves with an output whose ``approved`` field is true (give its role
        an ``output=`` pydantic model of your own, e.g. ``class Verdict(BaseModel): approved:
        bool; notes: str`` — flowgraph ships no such class), or with free text starting with
        ``APPROVED`` or ``LGTM``; anything else requests changes. Its ``task`` may use
        ``{work}`` and ``{round}``. The node's output is ``{"approved": ..., "rounds": n,
        "work": <the last version>, "review": <the last review>}``.
        """
        self._check_new_name(name)
        if max_rounds < 1:
            raise GraphError(f"review loop {name!r}: max_rounds must be at least 1")
        work_name = work.name if isinstance(work, NodeRef) else work
        reviewer = self._role_node(scoped(name, "review"), review, task)
        node = ReviewLoopNode(name, work_name, reviewer, max_rounds, on_give_up)
        return self._declare(name, node, [*after, work_name])

    def gate(self, name: str, message: str = "", *, after: Iterable[str | NodeRef] = ()) -> NodeRef:
        """An approval gate: what depends on it waits until ``flowgraph approve DIR NAME``;
        the output is ``{"approved": True, "note": ...}``."""
        self._check_new_name(name)
        return self._declare(name, GateNode(name, message), after)

    def checklist(
        self,
        name: str,
        init: Role | Step,
        work: Role | Step,
        *,
        init_task: str | None = None,
        task: str | None = None,
        check: Callable[[str, Any, Context], Awaitable[bool | str | None]] | None = None,
        after: Iterable[str | NodeRef] = (),
    ) -> NodeRef:
        """A long checklist worked through across runs: ``init`` returns item names (written to
        the ledger's ``features``); each run does the next ``--max-items`` of them with
        ``work`` (task may use ``{item}``) and ``check`` alone flips an item's ``passes``."""
        self._check_new_name(name)
        if check is not None and not inspect.iscoroutinefunction(check):
            raise GraphError(f"checklist {name!r}: check must be `async def check(item, out, ctx)`")
        node = ChecklistNode(
            name,
            self._unit(scoped(name, "init"), init, init_task),
            self._unit(name, work, task),
            check,
        )
        return self._declare(name, node, after)

    def route(
        self,
        name: str,
        classifier: Role | Step,
        branches: Mapping[str, Branch],
        *,
        task: str | None = None,
        after: Iterable[str | NodeRef] = (),
    ) -> NodeRef:
        """A conditional branch: ``classifier`` picks one label of ``branches``; the nodes
        listed under it run, the nodes listed under the other labels are ``not_taken``.

        The classifier is an async step returning a label, or a (cheap) role given ``task``
        whose answer is the label (or whose structured output has a ``route`` field). Each
        branch node runs after this node (declared before or after it). Below the branches, a
        node none of whose dependencies was taken is not taken either; a node with at least
        one taken dependency runs once those passed (it joins the branches) and sees only
        their outputs. The output is ``{"route": label}``; the choice is recorded, and a
        resume keeps it without asking the classifier again.

        Example:
            >>> graph.route("triage", classify, {"easy": "quick", "hard": ["deep", "check"]})
        """
        self._check_new_name(name)
        targets = {label: branch_names(nodes) for label, nodes in branches.items()}
        node = RouteNode(name, self._classifier(name, classifier, task, targets), targets)
        ref = self._declare(name, node, after)
        for target in dict.fromkeys(t for nodes in targets.values() for t in nodes):
            if target in self._declared:
                self._add_dependency(target, name)
            else:
                self._routed_later.setdefault(target, []).append(name)
        return ref

    def route_model(
        self,
        name: str,
        role: Role,
        task: str,
        *,
        classifier: Role | Step,
        models: Mapping[str, str],
        classifier_task: str | None = None,
        after: Iterable[str | NodeRef] = (),
    ) -> NodeRef:
        """A role node whose model a classifier picks per run (``{"easy": "haiku", "hard":
        "opus"}``): only the chosen label's ``<name>.<label>`` record runs; the others are
        recorded ``not_taken``. The output is the chosen run's output.

        ``classifier`` is as for ``route``; a role classifier is given ``classifier_task``
        (by default the node's own ``task``)."""
        self._check_new_name(name)
        labels = {label: () for label in models}
        ask = classifier_task or (task if isinstance(classifier, Role) else None)
        found = self._classifier(name, classifier, ask, labels)
        choices = tuple(
            self._role_node(scoped(name, label), dataclasses.replace(role, model=model), task)
            for label, model in models.items()
        )
        return self._declare(name, RoutedNode(name, found, choices), after)

    def _classifier(
        self, name: str, classifier: Any, task: str | None, labels: Mapping[str, Any]
    ) -> Work:
        if len(labels) < 2:
            raise GraphError(f"route {name!r}: give at least two branches to choose from")
        for label in labels:
            if not is_node_name(label):
                raise GraphError(
                    f"route {name!r}: branch label {label!r} is not valid; use letters, digits "
                    "and _ (it names the record of the choice), e.g. 'easy'"
                )
        if not isinstance(classifier, Role):
            return self._step_node(scoped(name, "classify"), classifier, task, None, 0)
        output = classifier.output
        if output is not None and "route" not in output.model_fields:
            raise GraphError(
                f"route {name!r}: classifier {classifier.name!r} answers with {output.__name__}, "
                "which has no 'route' field; add `route: str` to it, or drop output= and "
                "answer with the label"
            )
        if not task:
            raise GraphError(
                f"route {name!r}: classifier role {classifier.name!r} needs a task, e.g. "
                f"task='Is this question easy or hard? {{question}}'"
            )
        ask = ROUTE_ASK.format(labels=", ".join(labels))
        return self._role_node(scoped(name, "classify"), classifier, task + ask)

    def step(
        self, name: str | None = None, *, after: Iterable[str | NodeRef] = (), **kw: Any
    ) -> Callable[[Step], Step]:
        """Decorator form of a function step: ``@graph.step(after=["api"])``."""

        def add(func: Step) -> Step:
            self.node(name or func.__name__, func, after=after, **kw)
            return func

        return add

    def _check_new_name(self, name: str) -> None:
        if not is_node_name(name):
            raise GraphError(
                f"graph {self.name!r}: node name {name!r} is not valid; use letters, digits "
                "and _ (it must start with a letter), e.g. 'run_tests'"
            )
        if name in self._declared:
            raise GraphError(
                f"graph {self.name!r}: node {name!r} is declared twice; give each node its "
                "own name (the same role can serve several nodes)"
            )
        if name in self.inputs:
            raise GraphError(
                f"graph {self.name!r}: node {name!r} has the name of an input field; "
                "rename one of them so templates are unambiguous"
            )

    def _role_node(self, name: str, role: Role, task: str | None) -> RoleNode:
        if not task:
            raise GraphError(
                f"node {name!r} runs role {role.name!r} but has no task; pass the task "
                f"template, e.g. graph.node({name!r}, {role.name}, 'Do ... for {{feature}}')"
            )
        where = f"node {name!r} (role {role.name!r})"
        model = (
            self.default_model if role.model == INHERIT else resolve_model(role.model, where=where)
        )
        fallbacks = tuple(resolve_model(f, where=f"{where} fallback") for f in role.fallbacks)
        if role.endpoint:
            model, fallbacks = (
                on_endpoint(role.endpoint, model),
                tuple(on_endpoint(role.endpoint, f) for f in fallbacks),
            )
        server = tuple(
            resolve_model(f, where=f"{where} server fallback") for f in role.server_fallbacks
        )
        advisor = self.advisor if role.advisor == INHERIT else role.advisor
        base = RoleNode(name=name, role=role, task=task, model=model, fallbacks=fallbacks,
                        server_fallbacks=server)  # fmt: skip
        if not isinstance(advisor, Advisor):
            return base
        advisor_model = resolve_model(advisor.model, where=f"{where} advisor")
        executor_rank, advisor_rank = strength(model), strength(advisor_model)
        if executor_rank and advisor_rank and advisor_rank < executor_rank:
            raise GraphError(
                f"{where}: advisor {advisor_model} is weaker than its executor {model}; "
                "pick a stronger advisor (e.g. opus) or drop it"
            )
        advisor_fallbacks = tuple(
            resolve_model(f, where=f"{where} advisor fallback") for f in advisor.fallbacks
        )
        return RoleNode(name=name, role=role, task=task, model=model, fallbacks=fallbacks,
                        server_fallbacks=server, advisor=advisor, advisor_model=advisor_model,
                        advisor_fallbacks=advisor_fallbacks)  # fmt: skip

    def _step_node(
        self, name: str, func: Any, task: str | None, timeout: float | None, retries: int
    ) -> StepNode:
        if not callable(func):
            raise GraphError(
                f"node {name!r}: expected a Role or an async function, got {type(func).__name__}"
            )
        if not inspect.iscoroutinefunction(func):
            raise GraphError(
                f"node {name!r}: function step {getattr(func, '__name__', func)!r} is not async; "
                "declare it `async def ...(ctx)` (steps run on the event loop)"
            )
        if task is not None:
            raise GraphError(
                f"node {name!r}: a function step takes no task template; remove the task "
                "argument (a step reads ctx.input and ctx.outputs)"
            )
        if timeout is not None and timeout <= 0:
            raise GraphError(f"node {name!r}: timeout must be positive seconds or None")
        return StepNode(name, func, timeout=timeout, retries=retries)

    def _add_dependency(self, node: str, dependency: str) -> None:
        declared = self._declared.get(node)
        if declared is None:
            near = difflib.get_close_matches(node, self._declared, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise GraphError(
                f"graph {self.name!r}: no node named {node!r} to link; {hint}declare a node "
                f"before linking it; nodes are: {', '.join(self._declared) or 'none yet'}"
            )
        if dependency not in declared.after:
            declared.after.append(dependency)
        self._version += 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, nodes={list(self._declared)})"
