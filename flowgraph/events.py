"""Typed events a run emits as it goes, for the progress view, the logs, user callbacks,
``async for event in run.events()`` and OpenTelemetry (``flowgraph.telemetry``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AdvisorConsulted",
    "AdvisorWarning",
    "Event",
    "FallbackTaken",
    "ModelCalled",
    "ModelSubstituted",
    "ModelTurn",
    "NodeFinished",
    "NodeRetrying",
    "NodeStarted",
    "RunFinished",
    "RunStarted",
    "TextDelta",
    "ToolCalled",
    "fanout",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run began: ``nodes`` in the order they may run, ``to_run`` the ones this run will run
    (a resume leaves out nodes it reuses), ``models`` each node's model id by node name."""

    run_id: str
    graph: str
    nodes: tuple[str, ...]
    to_run: tuple[str, ...]
    run_dir: str | None
    models: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeStarted:
    """``node`` started its ``attempt``-th attempt (1 for the first) on ``model`` (empty for a
    function step)."""

    node: str
    attempt: int
    model: str
    parent: str | None = None  # set for a pattern's part: a map item, a review round...


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """One turn of ``node``'s conversation ended: ``model`` answered with ``stop_reason``
    (``tool_use``, ``end_turn``, ...) after reading ``input_tokens`` and writing
    ``output_tokens``."""

    node: str
    turn: int
    model: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """``node``'s model called ``tool``; ``is_error`` when the tool failed or refused (the model
    reads the error and can correct itself)."""

    node: str
    tool: str
    is_error: bool
    wall_s: float | None = None  # how long the tool ran


@dataclass(frozen=True, slots=True)
class ModelCalled:
    """One model call of ``node`` was answered (executor turns and advisor calls alike).

    ``wall_s`` is the call's wall time (fallbacks and retries included); ``ttft_s`` the time to
    the first streamed token (``None`` for a call that did not stream).
    """

    node: str
    kind: str  # "executor" or "advisor"
    model: str  # the model that answered
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    wall_s: float
    ttft_s: float | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of text as a streaming model call of ``node`` produced it."""

    node: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class FallbackTaken:
    """``from_model`` could not serve ``node`` (``reason``, e.g. ``overloaded (529)``), so this
    turn goes to ``to_model``, the next model of the role's fallback chain."""

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
    uses_left: int | None = None  # the node's (its own cap and the run's)
    run_uses_left: int | None = None  # the run's, when it caps uses


@dataclass(frozen=True, slots=True)
class AdvisorWarning:
    """The advisor is used in a way worth a look (``kind``: early_burn, high_rate,
    advisor_share, context_growth, native_context, native_unaccounted)."""

    node: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class NodeRetrying:
    """Attempt ``attempt`` of ``node`` failed with ``error``; the next starts after ``delay``
    seconds (the role's or node's ``retries``)."""

    node: str
    attempt: int
    error: str
    delay: float


@dataclass(frozen=True, slots=True)
class NodeFinished:
    """A node reached a final state: passed, failed, skipped, interrupted, not taken (a route
    chose another branch; ``error`` says which), or kept from a previous run (``reused``). A
    pattern's parts (map items, review rounds, race contenders) start and finish too, with
    ``parent`` naming their node."""

    node: str
    status: str
    error: str | None = None
    reused: bool = False
    parent: str | None = None  # set for a pattern's part: a map item, a review round...


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended with ``status``; ``counts`` is how many nodes ended in each node status.
    ``summary`` is not filled in today (always ``None``)."""

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
    | AdvisorWarning
    | ModelCalled
    | TextDelta
    | NodeRetrying
    | NodeFinished
    | RunFinished
)
"""Any event a run emits: ``on_event`` callbacks and ``async for event in run.events()`` receive
these (match on the type, e.g. ``case NodeFinished(node=name, status="failed"):``)."""


def fanout(*listeners: Callable[[Event], None] | None) -> Callable[[Event], None]:
    """One ``on_event`` callback that passes each event to every listener given, in order
    (``on_event=fanout(progress, Telemetry())``); ``None`` entries are skipped."""
    chosen = [listener for listener in listeners if listener is not None]

    def send(event: Event) -> None:
        for listener in chosen:
            listener(event)

    return send
