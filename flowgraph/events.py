"""Typed events a run emits as it goes, for the progress view, the logs and user callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AdvisorConsulted",
    "Event",
    "FallbackTaken",
    "ModelSubstituted",
    "ModelTurn",
    "NodeFinished",
    "NodeRetrying",
    "NodeStarted",
    "RunFinished",
    "RunStarted",
    "ToolCalled",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    graph: str
    nodes: tuple[str, ...]
    to_run: tuple[str, ...]
    run_dir: str | None
    models: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeStarted:
    node: str
    attempt: int
    model: str


@dataclass(frozen=True, slots=True)
class ModelTurn:
    node: str
    turn: int
    model: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ToolCalled:
    node: str
    tool: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class FallbackTaken:
    node: str
    from_model: str
    to_model: str
    reason: str


@dataclass(frozen=True, slots=True)
class ModelSubstituted:
    """The endpoint answered ``node``'s request for ``requested`` with ``served`` (recorded and
    priced as ``served``)."""

    node: str
    requested: str
    served: str


@dataclass(frozen=True, slots=True)
class AdvisorConsulted:
    """The executor of ``node`` consulted its advisor (or tried to: ``outcome`` says)."""

    node: str
    turn: int
    mode: str
    trigger: str
    model: str
    outcome: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class NodeRetrying:
    node: str
    attempt: int
    error: str
    delay: float


@dataclass(frozen=True, slots=True)
class NodeFinished:
    """A node reached a final state: passed, failed, skipped, interrupted, or kept from a
    previous run (``reused``)."""

    node: str
    status: str
    error: str | None = None
    reused: bool = False


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_id: str
    status: str
    counts: dict[str, int]
    summary: Any = None


Event = (
    RunStarted
    | NodeStarted
    | ModelTurn
    | ToolCalled
    | FallbackTaken
    | ModelSubstituted
    | AdvisorConsulted
    | NodeRetrying
    | NodeFinished
    | RunFinished
)
