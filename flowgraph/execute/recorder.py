"""Recorder: the one place a run's state changes are written to the ledger and sent out as
events — the scheduler's hooks, the sub-records patterns run, what each model call cost, the
advisor's consults, and what people send through the inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from flowgraph.agent.consult_record import Consult
from flowgraph.agent.loop import NodeReport
from flowgraph.errors import BudgetError, NodeError
from flowgraph.events import (
    AdvisorConsulted,
    AdvisorWarning,
    NodeFinished,
    NodeRetrying,
    NodeStarted,
    RunFinished,
)
from flowgraph.execute.emitter import Emitter
from flowgraph.ledger.inbox import (
    Inbox,
    deliver_steering,
    mark_delivered,
    pending_steering,
    record_messages,
)
from flowgraph.ledger.schema import NodeRecord, now_iso
from flowgraph.ledger.store import Ledger
from flowgraph.money.accounting import Spend
from flowgraph.status import NodeStatus, Paused, RunStatus

__all__ = ["Handover", "Recorder", "RunState", "storable"]

# The record fields that drop an attempt's conversation (the journal keeps its steps).
_START_OVER: dict[str, Any] = {"conversation": [], "conversation_at": None}


@dataclass(slots=True)
class RunState:
    """What a run holds in memory while it goes: outputs by node, the nodes it ran, and the
    live report of each role node still running."""

    outputs: dict[str, Any] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    reports: dict[str, NodeReport] = field(default_factory=dict)


class Recorder:
    """Records a run in its ledger and emits its events.

    Args:
        ledger: the run's ledger (its only writer is this run).
        state: the run's in-memory state, kept in step with the ledger.
        emit: where events go.
        models: each node's model, for the events that name it.
        inbox: where approvals and steering arrive.
    """

    def __init__(
        self,
        ledger: Ledger,
        state: RunState,
        emit: Emitter,
        models: Mapping[str, str],
        inbox: Inbox,
    ) -> None:
        self.ledger = ledger
        self.doc = ledger.doc
        self.state = state
        self.emit = emit
        self._models = models
        self._inbox = inbox
        self._listening = emit.listening

    def record(self, name: str) -> NodeRecord | None:
        """The ledger's record of ``name``, if it has one."""
        return self.doc.nodes.get(name)

    # -- the scheduler's hooks --------------------------------------------------------------

    def started(self, name: str, attempt: int) -> None:
        self.state.executed.append(name)
        record = self.doc.nodes[name]
        # placed: where this attempt runs, if an executor says (an earlier attempt's is gone)
        self.ledger.update_node(
            name, status=NodeStatus.RUNNING, attempts=record.attempts + 1,
            started_at=now_iso(), finished_at=None, error=None, placed=None,
        )  # fmt: skip
        if self._listening:  # events cost a little per node; build them only for a listener
            self.emit(NodeStarted(name, attempt, self._models.get(name, "")))

    def passed(self, name: str, output: Any) -> None:
        self.state.outputs[name] = output
        report = self._closing(name) if name in self.state.reports else {}
        self.ledger.update_node(
            name, status=NodeStatus.PASSED, output=output, finished_at=now_iso(), **report
        )  # fmt: skip
        if self._listening:
            self.emit(NodeFinished(name, NodeStatus.PASSED))

    def failed(self, name: str, error: BaseException) -> None:
        message = str(error) or type(error).__name__
        status = NodeStatus.BUDGET_EXCEEDED if isinstance(error, BudgetError) else NodeStatus.FAILED
        self.ledger.update_node(
            name, status=status, error=message, finished_at=now_iso(), **self._closing(name)
        )
        self.emit(NodeFinished(name, status, message))

    def retrying(self, name: str, attempt: int, error: BaseException, delay: float) -> None:
        self.emit(NodeRetrying(name, attempt, str(error), delay))

    def skipped(self, name: str, because: str) -> None:
        self.ledger.update_node(name, status=NodeStatus.SKIPPED, error=because)
        self.emit(NodeFinished(name, NodeStatus.SKIPPED, because))

    def not_taken(self, name: str, upstream: str) -> None:
        """A route left ``name`` out (``upstream`` is the route, or the not-taken node above
        it): final, not failed, no output."""
        choice = self.doc.nodes[upstream].route if upstream in self.doc.nodes else None
        because = (
            f"route {upstream!r} chose {choice!r}"
            if choice is not None
            else f"upstream node {upstream!r} was not taken"
        )
        self.ledger.update_node(
            name, status=NodeStatus.NOT_TAKEN, error=None, output=None, finished_at=now_iso()
        )
        self.emit(NodeFinished(name, NodeStatus.NOT_TAKEN, because))

    def paused(self, name: str, pause: Paused) -> None:
        self.ledger.update_node(name, status=pause.status, error=str(pause), finished_at=now_iso())
        self.emit(NodeFinished(name, pause.status, str(pause)))

    def interrupted(self, name: str) -> None:
        self.ledger.update_node(
            name, status=NodeStatus.INTERRUPTED, error="the run was stopped while this node ran",
            **self._closing(name, ended=False),
        )  # fmt: skip
        self.emit(NodeFinished(name, NodeStatus.INTERRUPTED))

    # -- planning and finishing -------------------------------------------------------------

    def planned(self, name: str, fingerprint: str, kind: str, role: str | None) -> None:
        """Mark ``name`` pending (in memory: the snapshot before any node starts records it)."""
        record = self.doc.nodes.get(name)
        changed = record is not None and record.fingerprint != fingerprint and record.conversation
        self.ledger.set_node(
            name, status=NodeStatus.PENDING, fingerprint=fingerprint, kind=kind, role=role,
            **(_START_OVER if changed else {}),  # a changed node starts over
        )  # fmt: skip

    def reused(self, name: str) -> None:
        self.emit(NodeFinished(name, NodeStatus.PASSED, reused=True))

    def finished(self, status: RunStatus, counts: dict[str, int]) -> None:
        self.ledger.update_run(status=status)
        self.emit(RunFinished(self.doc.run_id, status, counts))

    # -- sub-records: the work patterns run as records of their own ---------------------------

    def sub_started(
        self,
        record: str,
        *,
        kind: str,
        parent: str,
        fingerprint: str,
        role: str | None,
        model: str = "",
    ) -> None:
        previous = self.doc.nodes.get(record)
        changed = previous is not None and previous.fingerprint != fingerprint
        changed = changed and bool(previous and previous.conversation)
        self.ledger.update_node(
            record, status=NodeStatus.RUNNING, kind=kind, parent=parent, fingerprint=fingerprint,
            role=role, attempts=(previous.attempts if previous else 0) + 1,
            started_at=now_iso(), finished_at=None, error=None, placed=None,
            **(_START_OVER if changed else {}),
        )  # fmt: skip
        if self._listening:  # the progress view shows a pattern's parts as they go
            self.emit(NodeStarted(record, self.doc.nodes[record].attempts, model, parent))

    def sub_passed(self, record: str, output: Any) -> None:
        self.ledger.update_node(record, status=NodeStatus.PASSED, output=output,
                                finished_at=now_iso(), **self._closing(record))  # fmt: skip
        self._sub_finished(record, NodeStatus.PASSED)

    def sub_failed(self, record: str, error: BaseException) -> None:
        message = str(error) or type(error).__name__
        self.ledger.update_node(record, status=NodeStatus.FAILED, error=message,
                                finished_at=now_iso(), **self._closing(record))  # fmt: skip
        self._sub_finished(record, NodeStatus.FAILED, message)

    def sub_interrupted(self, record: str) -> None:
        self.ledger.update_node(
            record, status=NodeStatus.INTERRUPTED, **self._closing(record, ended=False)
        )
        self._sub_finished(record, NodeStatus.INTERRUPTED)

    def _sub_finished(self, record: str, status: NodeStatus, error: str | None = None) -> None:
        if self._listening:
            self.emit(NodeFinished(record, status, error, parent=self.doc.nodes[record].parent))

    def update(self, name: str, **fields: Any) -> None:
        """Change fields of a record (what patterns note: a race's winner...)."""
        self.ledger.update_node(name, **fields)

    def update_run(self, **fields: Any) -> None:
        """Change run-level fields (a checklist's features...)."""
        self.ledger.update_run(**fields)

    # -- what the model-call path reports ------------------------------------------------------

    def spent(self, name: str, spend: Spend, call: dict[str, Any] | None = None) -> None:
        """A call of ``name`` was paid: its usage and cost (and the call's timing) are
        journaled at once."""
        if call is None:
            self.ledger.update_node(name, usage=spend.usage, cost_usd=spend.cost_usd,
                                    spend=spend.rows)  # fmt: skip
            return
        self.ledger.note_call(name, call, usage=spend.usage, cost_usd=spend.cost_usd,
                              spend=spend.rows)  # fmt: skip

    def consulted(
        self,
        name: str,
        consults: list[Consult],
        consult: Consult,
        state: dict[str, Any] | None = None,
        uses_left: tuple[int | None, int | None] = (None, None),
    ) -> None:
        """A consult happened (or failed); journaled at once: it is paid work. ``state`` is
        the advisor's uses and warnings; ``uses_left`` the node's and the run's."""
        fields = {} if state is None else {"advisor": state}
        self.ledger.update_node(name, consults=[c.to_record() for c in consults], **fields)
        self.emit(
            AdvisorConsulted(
                name, consult.turn, consult.mode, consult.trigger, consult.model,
                consult.outcome, consult.input_tokens, consult.output_tokens, consult.cost_usd,
                *uses_left,
            )
        )  # fmt: skip

    def advisor_warned(self, name: str, kind: str, message: str, state: dict[str, Any]) -> None:
        """The advisor of ``name`` is used in a way worth a look: recorded and emitted."""
        self.ledger.update_node(name, advisor=state)
        self.emit(AdvisorWarning(name, kind, message))

    # -- the inbox: approvals and steering from people, from any process ---------------------

    def read_inbox(self) -> None:
        record_messages(self.ledger, self._inbox)

    def steering_for(self, record: str) -> Callable[[int], list[str]]:
        """What a running role node calls before each turn: messages not yet delivered."""

        def take(turn: int) -> list[str]:
            self.read_inbox()  # a message sent a moment ago still makes this turn
            return deliver_steering(self.ledger, record, turn)

        return take

    def handover_for(self, record: str, replay: list[dict[str, Any]]) -> Handover:
        """What a role node whose loop runs elsewhere is steered through (``replay``: the
        deltas its loop starts from)."""
        return Handover(self, record, replay)

    # -- a role node's report -----------------------------------------------------------------

    def report_for(self, record: str) -> NodeReport:
        """A fresh report for a role node's attempt; it is closed when the attempt ends."""
        report = self.state.reports[record] = NodeReport()
        if self.ledger.run_dir is None:
            return report
        previous = self.doc.nodes.get(record)
        if previous is not None and previous.conversation:  # a stopped attempt: carry it on
            # all but the transcript's head: the loop renders the task again
            report.replay = [d for d in previous.conversation if d["k"] != "task"]

        def note(delta: dict[str, Any]) -> None:
            self.ledger.note_turn(record, delta)

        def begin(task: str) -> None:  # a new attempt's head: what its conversation starts from
            attempt = self.doc.nodes[record].attempts if record in self.doc.nodes else 0
            note({"k": "task", "attempt": attempt, "content": task})

        report.note, report.begin = note, begin
        return report

    def _closing(self, name: str, *, ended: bool = True) -> dict[str, Any]:
        """The record fields a finished attempt's report fills in. An attempt that ``ended``
        (passed or failed) drops its steps from the record (the journal keeps them: its
        transcript); a stopped one keeps them for the next process to carry on from."""
        report = self.state.reports.pop(name, None)
        if report is None:
            return {}
        fields: dict[str, Any] = {
            "turns": report.turns,
            "tool_calls": report.tool_calls,
            "model": report.model,
            "served": report.served,
        }
        if ended and report.note is not None:
            fields.update(_START_OVER)
        if report.advisor is not None:
            fields["consults"] = [c.to_record() for c in report.advisor.consults]
        return fields


class Handover:
    """A role node's steering messages on their way to a loop that runs elsewhere (a Ray
    worker): the ``Steering`` an executor is given.

    Taking a message does not deliver it: it stays pending in the ledger (``turn`` null) until
    the loop's ``s`` delta that carries it comes back and is journaled, and only then is it
    marked delivered at that turn. So messages handed to a loop that is lost before it
    journaled them are neither lost nor given twice: a new dispatch is handed them again
    (``take(again=True)``), and a resume after the coordinator died finds them pending.
    """

    def __init__(self, recorder: Recorder, record: str, replay: list[dict[str, Any]]) -> None:
        self._recorder = recorder
        self._record = record
        self._handed: list[int] = []  # places in the record's steering list, in handed order
        # The loop's last recorded turn: its next `s` delta belongs to the turn after.
        self._turn = max((int(d["turn"]) for d in replay if d.get("k") == "a"), default=0)

    def take(self, *, again: bool = False) -> list[str]:
        """Messages not handed over yet (the inbox read first); ``again``: with those handed
        before and not delivered, in the order they were sent."""
        self._recorder.read_inbox()
        pending = pending_steering(self._recorder.ledger, self._record)
        handed = set(self._handed)
        fresh = [index for index, _ in pending if index not in handed]
        self._handed += fresh
        wanted = set(self._handed if again else fresh)
        return [text for index, text in pending if index in wanted]

    def noted(self, delta: dict[str, Any]) -> None:
        """Follow the loop's journal: an ``s`` delta delivers the first messages handed."""
        kind = delta.get("k")
        if kind == "a":
            self._turn = int(delta["turn"])
        elif kind == "s":
            count = len(delta["texts"])
            done, self._handed = self._handed[:count], self._handed[count:]
            mark_delivered(self._recorder.ledger, self._record, done, self._turn + 1)


def storable(name: str, value: Any) -> Any:
    """``value`` as the ledger stores it (a pydantic model as its JSON data), or a
    ``NodeError`` when it is not JSON data.

    A walk over the value's containers, not an encoding: a node that passes on a growing list
    of large strings pays per item, not per byte (the bytes are encoded only where the output
    is written).
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    bad = _unstorable(value, set())
    if bad is not None:
        raise NodeError(
            f"node {name!r} returned {bad}, which cannot be stored as JSON; "
            "return str, numbers, lists, dicts or a pydantic model"
        )
    return value


def _unstorable(value: Any, inside: set[int]) -> str | None:
    """What in ``value`` is not JSON data (``None`` if all of it is); ``inside`` holds the
    containers on the path here, to catch one that contains itself."""
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return None
    if isinstance(value, list | tuple | dict):
        if id(value) in inside:
            return f"a {type(value).__name__} that contains itself"
        inside.add(id(value))
        if isinstance(value, dict):
            for key in value:
                if not (key is None or isinstance(key, str | int | float)):
                    return f"a dict with a {type(key).__name__} key"
            items: Any = value.values()
        else:
            items = value
        for item in items:
            kind = type(item)
            if kind is str or kind is int or kind is float or kind is bool or item is None:
                continue  # the common case, without a call
            bad = _unstorable(item, inside)
            if bad is not None:
                return bad
        inside.discard(id(value))
        return None
    return f"a {type(value).__name__}"
