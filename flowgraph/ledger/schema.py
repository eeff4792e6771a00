"""The ledger's schema: ``ledger.json`` as data — the run document and its node records."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from typing_extensions import TypedDict  # pydantic needs this TypedDict on Python 3.11

from flowgraph.status import NodeStatus, RunStatus

__all__ = [
    "SCHEMA_VERSION",
    "Feature",
    "RUN_JOURNAL_FIELDS",
    "GraphInfo",
    "InboxMessage",
    "JournalEntry",
    "JournalInfo",
    "LedgerDoc",
    "NodeRecord",
    "Source",
    "SpendRow",
    "now_iso",
]

# 2: a role node's conversation in progress is no longer in ledger.json, only where it starts
# in the journal (``conversation_at``); schema 1 ledgers, which hold the steps, are still read.
SCHEMA_VERSION = 2

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
    # The advisor's uses, uses left (node and run) and warnings; each model call's wall time
    # and time to first token.
    advisor: dict[str, Any] | None = None
    latency: list[dict[str, Any]] = field(default_factory=list)
    parent: str | None = None  # set on a pattern's sub-record (a map item, a review round...)
    placed: str | None = None  # where the work ran, when not in the coordinator (a Ray node id)
    decision: dict[str, Any] | None = None  # an approval gate's approval or rejection
    steering: list[dict[str, Any]] = field(default_factory=list)
    # What patterns record: a map's failed items, a race's winner and its contenders' checks,
    # a checklist's last failed item, a route's chosen branch.
    failed_items: list[int] = field(default_factory=list)
    winner: str | None = None
    route: str | None = None
    check_passed: bool | None = None
    last_failure: dict[str, Any] | None = None
    # A writer node's changes to the workspace: the files, and the diff's file in the run dir.
    changed_files: list[str] = field(default_factory=list)
    diff_file: str | None = None
    pending_approval: dict[str, Any] | None = None  # tool calls a person must approve first
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    # A checklist's own items ({"name", "passes"}), so two checklists never share one list.
    items: list[dict[str, Any]] = field(default_factory=list)
    # The attempt in progress, step by step (each model turn, tool result and message as it
    # happened, journaled as deltas): kept while the node runs or was stopped, so a resumed
    # attempt carries on without paying again; cleared when it passes or fails. ledger.json
    # keeps only where its first step (``task``) is in the journal, which holds the steps: a
    # snapshot never writes a conversation again; reading the ledger takes them from there.
    conversation: Annotated[list[dict[str, Any]], Field(exclude=True)] = field(default_factory=list)
    conversation_at: int | None = None

    def summary(self) -> dict[str, Any]:
        """The record without its output and per-turn detail, for status listings."""
        data = asdict(self)
        del data["output"], data["served"], data["spend"], data["steering"]
        del data["items"], data["latency"], data["conversation"], data["conversation_at"]
        return data


# A ledger.json node record with a key this schema lacks is refused, not silently dropped.
NodeRecord.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


class SpendRow(TypedDict):
    """One ``kind:model`` row of a node's spend (see ``flowgraph.money.accounting``)."""

    kind: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float | None


class Source(TypedDict):
    """Where ``flowgraph resume`` finds the graph again."""

    target: str
    kwargs: NotRequired[dict[str, Any] | None]


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
    source: Source | None = None  # where `flowgraph resume` finds the graph again
    costs: dict[str, Any] = Field(default_factory=dict)  # roll-ups, refreshed at each snapshot
    inbox_offset: int = Field(0, ge=0)  # how far inbox.jsonl has been applied
    checklist: str | None = None  # the node whose items make up `features`, if any
    # The run settings it started with (budget, concurrency, prices, limits, max items), which a
    # resume applies unless given its own; absent from ledgers written before it was recorded.
    settings: dict[str, Any] = Field(default_factory=dict)
    nodes: dict[str, NodeRecord]


# -- what the journal and the inbox may hold ---------------------------------------------------
#
# Journal lines and inbox messages are checked against these before they are applied: strict
# types (``"attempts": "3"`` is refused, not coerced), no unknown fields, and only the run-level
# fields the run itself changes as it goes (never ``nodes``, ``run_id``, ``graph``...).

RUN_JOURNAL_FIELDS = (
    "status", "current_state", "next_step", "features", "checklist", "inbox_offset", "source",
    "settings",
)  # fmt: skip
_STRICT = ConfigDict(extra="forbid", strict=True)


def _optional_fields(types: dict[str, Any]) -> dict[str, Any]:
    """Every field optional (a journal line changes some), enums read from their values."""
    lax = {"status"}  # a status arrives as its string value
    return {
        name: (kind, Field(None, strict=False) if name in lax else None)
        for name, kind in types.items()
    }


_node_types = get_type_hints(NodeRecord)
_node_types["spend"] = dict[str, SpendRow]
NodeFields = create_model(
    "NodeFields",
    __config__=_STRICT,
    **_optional_fields({f.name: _node_types[f.name] for f in fields(NodeRecord)}),
)
RunFields = create_model(
    "RunFields",
    __config__=_STRICT,
    **_optional_fields({k: LedgerDoc.model_fields[k].annotation for k in RUN_JOURNAL_FIELDS}),
)


class JournalEntry(BaseModel):
    """One journal line: ``{"n": record, "f": {field: value}}``, ``{"n": record, "t": delta}``
    (one step of a role node's conversation, appended), ``{"n": record, "f": {...}, "l": call}``
    (a paid call: the record's new totals, and the call appended to its ``latency``; a delta,
    so a node's thousandth call writes no more than its first) or ``{"r": {field: value}}``."""

    model_config = _STRICT

    n: str | None = None
    f: NodeFields | None = None
    t: dict[str, Any] | None = None
    l: dict[str, Any] | None = None  # noqa: E741 (the journal's one-letter keys)
    r: RunFields | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the line sets, validated (a status as a ``NodeStatus``...)."""
        fields_ = self.f if self.n is not None else self.r
        assert fields_ is not None
        return {k: getattr(fields_, k) for k in fields_.model_fields_set}

    def problem(self) -> str | None:
        """Why the line is not one flowgraph writes, if it is not."""
        if self.n is not None and self.r is None and self.t is None and self.f is not None:
            return None  # fields, and perhaps a call appended
        if self.n is not None and self.r is None and self.t is not None:
            return _delta_problem(self.t) if self.f is None and self.l is None else _NEITHER
        if self.n is None and self.f is None and self.l is None and self.r is not None:
            return None
        return _NEITHER


_NEITHER = 'it is neither {"n": record, "f": fields} nor {"r": fields}'


_DELTA_KEYS = {"task": ("attempt", "content"), "a": ("turn", "content", "stop", "served", "meta"),
               "r": ("block",), "u": ("content",), "s": ("texts",)}  # fmt: skip


def _delta_problem(delta: dict[str, Any]) -> str | None:
    """Why a conversation delta is not one the tool loop writes, if it is not."""
    keys = _DELTA_KEYS.get(delta.get("k"))  # type: ignore[arg-type]
    if keys is None:
        return f"a conversation step of unknown kind {delta.get('k')!r}"
    missing = [k for k in keys if k not in delta]
    if missing:
        return f"a conversation step without {', '.join(missing)}"
    if delta["k"] == "a" and not (
        isinstance(delta["turn"], int) and isinstance(delta["content"], list)
    ):
        return "a model turn whose turn or content has the wrong type"
    return None


class InboxMessage(BaseModel):
    """One line of ``inbox.jsonl``, as ``flowgraph approve/reject/steer`` write it."""

    model_config = _STRICT

    at: str | None = None
    kind: Literal["approve", "reject", "steer"]
    node: str
    text: str = ""


SPEND_ROWS: TypeAdapter[dict[str, SpendRow]] = TypeAdapter(dict[str, SpendRow])
