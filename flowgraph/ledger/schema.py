"""The ledger's schema: ``ledger.json`` as data — the run document and its node records."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flowgraph.status import NodeStatus, RunStatus

__all__ = [
    "SCHEMA_VERSION",
    "Feature",
    "GraphInfo",
    "JournalInfo",
    "LedgerDoc",
    "NodeRecord",
    "now_iso",
]

SCHEMA_VERSION = 1

_last_stamp: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the millisecond (formatted once per millisecond:
    a fast run stamps many records within one)."""
    global _last_stamp
    millis = time.time_ns() // 1_000_000
    if millis != _last_stamp[0]:
        moment = datetime.fromtimestamp(millis / 1000, UTC)
        _last_stamp = (millis, moment.isoformat(timespec="milliseconds"))
    return _last_stamp[1]


@dataclass(slots=True)
class NodeRecord:
    """One node's record: what it is, what happened, what it produced and cost.

    A plain dataclass, not a pydantic model: it is updated several times per node on the hot
    path, and pydantic validates it where it crosses the boundary (``LedgerDoc`` on load and
    dump) anyway.
    """

    status: NodeStatus = NodeStatus.PENDING
    fingerprint: str = ""
    kind: str = "role"
    attempts: int = 0
    model: str | None = None
    turns: int = 0
    tool_calls: int = 0
    served: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    output_file: str | None = None
    role: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    spend: dict[str, dict[str, Any]] = field(default_factory=dict)
    consults: list[dict[str, Any]] = field(default_factory=list)
    parent: str | None = None  # set on a pattern's sub-record (a map item, a review round...)
    decision: dict[str, Any] | None = None  # an approval gate's approval or rejection
    steering: list[dict[str, Any]] = field(default_factory=list)
    # What patterns record: a map's failed items, a race's winner and its contenders' checks,
    # a checklist's last failed item.
    failed_items: list[int] = field(default_factory=list)
    winner: str | None = None
    check_passed: bool | None = None
    last_failure: dict[str, Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The record without its output and per-turn detail, for status listings."""
        data = asdict(self)
        del data["output"], data["served"], data["spend"], data["steering"]
        return data


class GraphInfo(BaseModel):
    name: str
    fingerprint: str


class JournalInfo(BaseModel):
    file: str = "events.jsonl"
    offset: int = Field(0, ge=0)


class Feature(BaseModel):
    name: str
    passes: bool = False


class LedgerDoc(BaseModel):
    """The schema of ``ledger.json``.

    Run-level fields are validated when set (a checklist's features arrive from the journal as
    plain dicts and must become ``Feature``s); node records are plain dataclasses, updated
    often and validated when the document is loaded.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    schema_version: int
    run_id: str
    graph: GraphInfo
    input: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING
    created_at: str
    updated_at: str
    current_state: str = ""
    next_step: str = ""
    features: list[Feature] = Field(default_factory=list)
    journal: JournalInfo = Field(default_factory=JournalInfo)
    source: dict[str, Any] | None = None  # where `flowgraph resume` finds the graph again
    costs: dict[str, Any] = Field(default_factory=dict)  # roll-ups, refreshed at each snapshot
    inbox_offset: int = 0  # how far inbox.jsonl has been applied
    checklist: str | None = None  # the node whose items make up `features`, if any
    # The run settings it started with (budget, concurrency, prices, limits, max items), which a
    # resume applies unless given its own; absent from ledgers written before it was recorded.
    settings: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, NodeRecord]
