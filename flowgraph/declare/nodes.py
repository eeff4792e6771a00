"""Node kinds: what a graph node does — a role's tool loop, a function step, or a pattern
(map, race, review loop, approval gate, checklist) built from them. A subgraph is not a kind:
the graph that uses it takes in its nodes as ``<name>.<node>`` when it is validated.

Each kind is frozen data with a ``spec`` (what defines it, for fingerprints); what a kind does
when it runs lives with its pattern (``flowgraph.patterns``) and the runner.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from flowgraph.agent.consults import Advisor
from flowgraph.declare.context import Context
from flowgraph.declare.role import Role

__all__ = [
    "ChecklistNode",
    "GateNode",
    "MapNode",
    "Node",
    "RaceNode",
    "ReviewLoopNode",
    "RoleNode",
    "Step",
    "StepNode",
    "Work",
]

Step = Callable[[Context], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RoleNode:
    """A node that runs ``role`` as an agent tool loop on the rendered ``task``."""

    name: str
    role: Role
    task: str
    model: str  # the full model id, after "inherit" and aliases are resolved
    fallbacks: tuple[str, ...]
    after: tuple[str, ...] = ()
    server_fallbacks: tuple[str, ...] = ()
    advisor: Advisor | None = None  # resolved: inherit applied
    advisor_model: str = ""
    advisor_fallbacks: tuple[str, ...] = ()

    @property
    def timeout(self) -> float | None:
        return self.role.timeout

    @property
    def retries(self) -> int:
        return self.role.retries

    @property
    def kind(self) -> str:
        return "role"

    def with_after(self, after: tuple[str, ...]) -> RoleNode:
        # Direct construction: dataclasses.replace cost a few µs a node on large graphs.
        return RoleNode(self.name, self.role, self.task, self.model, self.fallbacks, after,
                        self.server_fallbacks, self.advisor, self.advisor_model,
                        self.advisor_fallbacks)  # fmt: skip

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
class StepNode:
    """A node that awaits a plain async function, for deterministic work (run the tests...)."""

    name: str
    func: Step
    after: tuple[str, ...] = ()
    timeout: float | None = None
    retries: int = 0

    @property
    def kind(self) -> str:
        return "step"

    def with_after(self, after: tuple[str, ...]) -> StepNode:
        return StepNode(self.name, self.func, after, self.timeout, self.retries)

    @property
    def model(self) -> str:
        return ""

    def spec(self) -> dict[str, Any]:
        return {"kind": "step", "func": function_identity(self.func)}


_IDENTITIES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def function_identity(func: Callable[..., Any]) -> str:
    """``_identity`` of ``func``, cached: reading source is slow and graphs reuse functions."""
    try:
        return _IDENTITIES[func]
    except (KeyError, TypeError):
        pass
    identity = _identity(func)
    with contextlib.suppress(TypeError):
        _IDENTITIES[func] = identity
    return identity


def _identity(func: Callable[..., Any]) -> str:
    """A function's name plus a hash of its source, so editing the function changes it.

    The module name is left out: a graph file loaded by the CLI gets a different module name
    than the same file imported, and that must not look like an edit.
    """
    name = getattr(func, "__qualname__", None) or type(func).__name__
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        source = code.co_code.hex() if code is not None else ""
    return name + ":" + hashlib.sha256(source.encode()).hexdigest()[:16]


Work = RoleNode | StepNode


class _Pattern:
    """What pattern nodes share: no timeout or retries of their own, a model only through
    their work, and ``with_after`` by ``dataclasses.replace`` (there are few of them)."""

    timeout: float | None = None
    retries: int = 0

    @property
    def model(self) -> str:
        return ""

    def with_after(self, after: tuple[str, ...]) -> Any:
        return replace(self, after=after)  # type: ignore[type-var]


@dataclass(frozen=True)
class MapNode(_Pattern):
    """Runs ``work`` once per item of the list ``over`` (an upstream output or an input)."""

    name: str
    over: str
    work: Work
    after: tuple[str, ...] = ()
    concurrency: int | None = None
    on_error: Literal["fail", "continue"] = "fail"
    kind: str = "map"

    @property
    def model(self) -> str:
        return self.work.model

    def spec(self) -> dict[str, Any]:
        return {"kind": "map", "over": self.over, "work": self.work.spec(),
                "on_error": self.on_error}  # fmt: skip


@dataclass(frozen=True)
class RaceNode(_Pattern):
    """The same task on several configurations; a check or a judge picks the winner."""

    name: str
    contenders: tuple[RoleNode, ...]
    check: Callable[[Any, Context], Awaitable[bool]] | None = None
    judge: RoleNode | None = None
    cancel_rest: bool = True
    after: tuple[str, ...] = ()
    kind: str = "race"

    @property
    def model(self) -> str:
        return ", ".join(c.model for c in self.contenders)

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

    name: str
    work_name: str
    review: RoleNode
    max_rounds: int = 3
    on_give_up: Literal["fail", "pass"] = "fail"
    after: tuple[str, ...] = ()
    work: RoleNode | None = None  # the node named ``work_name``, filled in at validation
    kind: str = "loop"

    @property
    def model(self) -> str:
        return self.review.model

    def spec(self) -> dict[str, Any]:
        return {"kind": "loop", "work": self.work_name, "review": self.review.spec(),
                "max_rounds": self.max_rounds, "on_give_up": self.on_give_up}  # fmt: skip


@dataclass(frozen=True)
class GateNode(_Pattern):
    """Pauses what depends on it until a person approves (or rejects) it."""

    name: str
    message: str = ""
    after: tuple[str, ...] = ()
    kind: str = "gate"

    def spec(self) -> dict[str, Any]:
        return {"kind": "gate", "message": self.message}


@dataclass(frozen=True)
class ChecklistNode(_Pattern):
    """``init`` lists work items into the ledger's features; each run does the next few."""

    name: str
    init: Work
    work: Work
    check: Callable[[str, Any, Context], Awaitable[bool | str | None]] | None = None
    after: tuple[str, ...] = ()
    kind: str = "checklist"

    def spec(self) -> dict[str, Any]:
        return {"kind": "checklist", "init": self.init.spec(), "work": self.work.spec(),
                "check": function_identity(self.check) if self.check else None}  # fmt: skip


Node = RoleNode | StepNode | MapNode | RaceNode | ReviewLoopNode | GateNode | ChecklistNode
