"""Node kinds: what a graph node is — a role's tool loop, a function step, or a pattern (map,
race, review loop, approval gate, checklist, route) built from them. A subgraph is not a kind: the
graph that uses it takes in its nodes as ``<name>.<node>`` when it is validated.

Each kind is frozen data that answers for itself what the compiler and the runner ask of it:
``kind`` (its name in the ledger), ``spec()`` (what defines it, for fingerprints),
``role_tasks()`` (the role tasks it renders, for template checks), ``model`` (what the
progress view shows), ``timeout``/``retries``, ``retryable(error)`` and ``with_after``. What a
kind does when it runs lives with the runner (``flowgraph.execute``) and the patterns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from flowgraph.declare.advisor import Advisor
from flowgraph.declare.context import Context
from flowgraph.declare.identity import function_identity
from flowgraph.declare.names import local_of, scope_of, scoped
from flowgraph.declare.role import Role
from flowgraph.errors import EndpointUnreachableError, GraphError, NodeError, TransientModelError

__all__ = [
    "ChecklistNode",
    "GateNode",
    "MapNode",
    "Node",
    "RaceNode",
    "ReviewLoopNode",
    "RoleNode",
    "RouteNode",
    "RoutedNode",
    "RoleTask",
    "Step",
    "StepNode",
    "Work",
]

Step = Callable[[Context], Awaitable[Any]]
# A role node a kind renders a task for, and the names its pattern adds to that template.
RoleTask = tuple["RoleNode", frozenset[str]]
_ITEM_VARS = frozenset({"item", "index"})


class _Kind:
    """What every kind answers the same way unless it says otherwise."""

    kind: ClassVar[str]
    timeout: float | None = None
    retries: int = 0
    role_name: str | None = None  # the role it runs, for the ledger's ``role`` field
    links: ClassVar[bool] = False  # whether ``link`` has references to resolve

    @property
    def model(self) -> str:
        """The model(s) it runs on, as the progress view shows them (``""`` for none)."""
        return ""

    def role_tasks(self) -> tuple[RoleTask, ...]:
        """The role tasks it renders (empty for a kind without a model)."""
        return ()

    def retryable(self, error: BaseException) -> bool:
        """Whether an attempt that failed with ``error`` is worth another (within ``retries``)."""
        return not isinstance(error, NodeError)

    def link(self, nodes: Mapping[str, Node]) -> Any:
        """This node with references to other nodes resolved (at validation)."""
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleNode(_Kind):
    """A node that runs ``role`` as an agent tool loop on the rendered ``task``."""

    kind: ClassVar[str] = "role"

    name: str
    role: Role
    task: str
    model: str  # the full model id, after "inherit" and aliases
    fallbacks: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    server_fallbacks: tuple[str, ...] = ()
    advisor: Advisor | None = None  # resolved: inherit applied
    advisor_model: str = ""
    advisor_fallbacks: tuple[str, ...] = ()

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        return self.role.timeout

    @property
    def retries(self) -> int:  # type: ignore[override]
        return self.role.retries

    @property
    def role_name(self) -> str | None:  # type: ignore[override]
        return self.role.name

    def role_tasks(self) -> tuple[RoleTask, ...]:
        return ((self, frozenset()),)

    def retryable(self, error: BaseException) -> bool:
        # An unreachable endpoint was already retried by the router; again would only hide it.
        return isinstance(error, TransientModelError) and not isinstance(
            error, EndpointUnreachableError
        )

    def with_after(self, after: tuple[str, ...]) -> RoleNode:
        # Direct construction: dataclasses.replace cost a few µs a node on large graphs.
        return RoleNode(name=self.name, role=self.role, task=self.task, model=self.model,
                        fallbacks=self.fallbacks, after=after,
                        server_fallbacks=self.server_fallbacks, advisor=self.advisor,
                        advisor_model=self.advisor_model,
                        advisor_fallbacks=self.advisor_fallbacks)  # fmt: skip

    def spec(self) -> dict[str, Any]:
        advisor = self.advisor.spec() | {"model": self.advisor_model} if self.advisor else None
        return {
            "kind": "role",
            "role": self.role.spec(),
            "task": self.task,
            "model": self.model,
            "advisor": advisor,
        }


@dataclass(frozen=True, slots=True)
class StepNode(_Kind):
    """A node that awaits a plain async function, for deterministic work (run the tests...)."""

    kind: ClassVar[str] = "step"

    name: str
    func: Step
    after: tuple[str, ...] = ()
    timeout: float | None = None
    retries: int = 0

    def with_after(self, after: tuple[str, ...]) -> StepNode:
        return StepNode(self.name, self.func, after, self.timeout, self.retries)

    def spec(self) -> dict[str, Any]:
        return {"kind": "step", "func": function_identity(self.func)}


Work = RoleNode | StepNode


class _Pattern(_Kind):
    """Pattern nodes have no timeout or retries of their own; ``with_after`` goes by
    ``dataclasses.replace`` (there are few of them)."""

    def with_after(self, after: tuple[str, ...]) -> Any:
        return replace(self, after=after)  # type: ignore[type-var]


def _work_tasks(work: Work) -> tuple[RoleTask, ...]:
    return ((work, _ITEM_VARS),) if isinstance(work, RoleNode) else ()


@dataclass(frozen=True)
class MapNode(_Pattern):
    """Runs ``work`` once per item of the list ``over`` (an upstream output or an input)."""

    kind: ClassVar[str] = "map"

    name: str
    over: str
    work: Work
    after: tuple[str, ...] = ()
    concurrency: int | None = None
    on_error: Literal["fail", "continue"] = "fail"

    @property
    def model(self) -> str:
        return self.work.model

    def role_tasks(self) -> tuple[RoleTask, ...]:
        return _work_tasks(self.work)

    def spec(self) -> dict[str, Any]:
        return {"kind": "map", "over": self.over, "work": self.work.spec(),
                "on_error": self.on_error}  # fmt: skip


@dataclass(frozen=True)
class RaceNode(_Pattern):
    """The same task on several configurations; a check or a judge picks the winner."""

    kind: ClassVar[str] = "race"

    name: str
    contenders: tuple[RoleNode, ...]
    check: Callable[[Any, Context], Awaitable[bool]] | None = None
    judge: RoleNode | None = None
    cancel_rest: bool = True
    after: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return ", ".join(c.model for c in self.contenders)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each contender's short name (its record is ``<race>.<label>``)."""
        return tuple(local_of(c.name) for c in self.contenders)

    def role_tasks(self) -> tuple[RoleTask, ...]:
        judge = ((self.judge, frozenset({"contenders"})),) if self.judge else ()
        return tuple((c, frozenset()) for c in self.contenders) + judge

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "race",
            "contenders": [c.spec() for c in self.contenders],
            "check": function_identity(self.check) if self.check else None,
            "judge": self.judge.spec() if self.judge else None,
        }


@dataclass(frozen=True)
class ReviewLoopNode(_Pattern):
    """``review`` judges the output of the earlier node ``work``; changes requested send the
    work back to that node's role with the review attached, at most ``max_rounds`` rounds."""

    kind: ClassVar[str] = "loop"
    links: ClassVar[bool] = True

    name: str
    work_name: str
    review: RoleNode
    max_rounds: int = 3
    on_give_up: Literal["fail", "pass"] = "fail"
    after: tuple[str, ...] = ()
    work: RoleNode | None = None  # the node named ``work_name``, filled in at validation

    @property
    def model(self) -> str:
        return self.review.model

    def role_tasks(self) -> tuple[RoleTask, ...]:
        return ((self.review, frozenset({"work", "round"})),)

    def link(self, nodes: Mapping[str, Node]) -> ReviewLoopNode:
        work = nodes.get(self.work_name)
        if not isinstance(work, RoleNode):
            kind = "does not exist" if work is None else f"is a {work.kind} node, not a role"
            raise GraphError(
                f"review loop {self.name!r} sends work back to {self.work_name!r}, which "
                f"{kind}; name an earlier role node as work="
            )
        return replace(self, work=work)

    def spec(self) -> dict[str, Any]:
        return {"kind": "loop", "work": self.work_name, "review": self.review.spec(),
                "max_rounds": self.max_rounds, "on_give_up": self.on_give_up}  # fmt: skip


@dataclass(frozen=True)
class GateNode(_Pattern):
    """Pauses what depends on it until a person approves (or rejects) it."""

    kind: ClassVar[str] = "gate"

    name: str
    message: str = ""
    after: tuple[str, ...] = ()

    def spec(self) -> dict[str, Any]:
        return {"kind": "gate", "message": self.message}


@dataclass(frozen=True)
class ChecklistNode(_Pattern):
    """``init`` lists work items into the ledger's features; each run does the next few."""

    kind: ClassVar[str] = "checklist"

    name: str
    init: Work
    work: Work
    check: Callable[[str, Any, Context], Awaitable[bool | str | None]] | None = None
    after: tuple[str, ...] = ()

    def role_tasks(self) -> tuple[RoleTask, ...]:
        init: tuple[RoleTask, ...] = (
            ((self.init, frozenset()),) if isinstance(self.init, RoleNode) else ()
        )
        return _work_tasks(self.work) + init

    def spec(self) -> dict[str, Any]:
        return {"kind": "checklist", "init": self.init.spec(), "work": self.work.spec(),
                "check": function_identity(self.check) if self.check else None}  # fmt: skip


def _classifier_tasks(classifier: Work) -> tuple[RoleTask, ...]:
    return ((classifier, frozenset()),) if isinstance(classifier, RoleNode) else ()


@dataclass(frozen=True)
class RouteNode(_Pattern):
    """A classifier picks one branch; the nodes of the other branches are not taken.

    ``branches`` maps each label to the nodes that run only when it is chosen (each runs
    after this node); its output is ``{"route": label}``.
    """

    kind: ClassVar[str] = "route"
    links: ClassVar[bool] = True

    name: str
    classifier: Work
    branches: Mapping[str, tuple[str, ...]]
    after: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return self.classifier.model if isinstance(self.classifier, RoleNode) else ""

    @property
    def labels(self) -> tuple[str, ...]:
        """The branch labels, in declaration order."""
        return tuple(self.branches)

    def not_chosen(self, label: str) -> frozenset[str]:
        """The nodes that do not run when ``label`` is chosen (a node listed under it too
        runs)."""
        chosen = set(self.branches.get(label, ()))
        return frozenset(n for nodes in self.branches.values() for n in nodes if n not in chosen)

    def role_tasks(self) -> tuple[RoleTask, ...]:
        return _classifier_tasks(self.classifier)

    def link(self, nodes: Mapping[str, Node]) -> RouteNode:
        """Check the branch nodes exist; inside a subgraph, name them as the parent does; a
        subgraph as a branch stands for its first nodes (they run after the route)."""
        scope = scope_of(self.name)
        branches: dict[str, tuple[str, ...]] = {}
        for label, targets in self.branches.items():
            found: list[str] = []
            for target in (scoped(scope, t) if scope else t for t in targets):
                if target not in nodes:
                    top = ", ".join(n for n in nodes if "." not in n)
                    raise GraphError(
                        f"route {self.name!r} sends {label!r} to {target!r}, which does not "
                        f"exist; nodes are: {top}"
                    )
                inside = [n for n, node in nodes.items()
                          if n.startswith(target + ".") and self.name in node.after]  # fmt: skip
                found += [target, *inside]
            branches[label] = tuple(found)
        return replace(self, branches=branches)

    def spec(self) -> dict[str, Any]:
        return {"kind": "route", "classifier": self.classifier.spec(),
                "branches": {k: list(v) for k, v in self.branches.items()}}  # fmt: skip


@dataclass(frozen=True)
class RoutedNode(_Pattern):
    """One role node whose model a classifier picks: ``choices`` holds the role on each
    label's model (records ``<name>.<label>``); only the chosen one runs."""

    kind: ClassVar[str] = "routed"

    name: str
    classifier: Work
    choices: tuple[RoleNode, ...]
    after: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return " | ".join(f"{local_of(c.name)}: {c.model}" for c in self.choices)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each choice's label (its record is ``<name>.<label>``)."""
        return tuple(local_of(c.name) for c in self.choices)

    @property
    def role_name(self) -> str | None:  # type: ignore[override]
        return self.choices[0].role.name

    def role_tasks(self) -> tuple[RoleTask, ...]:
        return _classifier_tasks(self.classifier) + tuple((c, frozenset()) for c in self.choices)

    def spec(self) -> dict[str, Any]:
        return {"kind": "routed", "classifier": self.classifier.spec(),
                "choices": [c.spec() for c in self.choices]}  # fmt: skip


Node = (
    RoleNode
    | StepNode
    | MapNode
    | RaceNode
    | ReviewLoopNode
    | GateNode
    | ChecklistNode
    | RouteNode
    | RoutedNode
)
