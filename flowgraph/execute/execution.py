"""Runner: one run of a graph — opens or resumes its ledger, plans, schedules, and records.

This is where the pieces meet: the validated graph says what to run, the ledger says what is
already done, the scheduler runs the rest, the agent runs role nodes, and every state change is
written to the ledger and emitted as an event. Resume rule: a node recorded ``passed`` whose
fingerprint is unchanged is never run again; its stored output feeds its dependents.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flowgraph import patterns
from flowgraph.agent.consults import AdvisorSession, NativeSupport
from flowgraph.agent.loop import NodeReport, run_role
from flowgraph.compile.validation import ValidGraph, role_tasks
from flowgraph.declare.context import Context
from flowgraph.declare.nodes import RoleNode, StepNode, Work
from flowgraph.errors import BudgetError, NodeError, TransientModelError
from flowgraph.events import (
    AdvisorConsulted,
    Event,
    NodeFinished,
    NodeRetrying,
    NodeStarted,
    RunFinished,
    RunStarted,
)
from flowgraph.execute.calls import Calls, default_client, resolve_limits
from flowgraph.execute.opening import open_ledger
from flowgraph.execute.result import RunResult
from flowgraph.execute.scheduler import Paused, Scheduler
from flowgraph.execute.summary import describe
from flowgraph.execute.upstream import Upstream
from flowgraph.graph import Graph
from flowgraph.ledger.inbox import Inbox, deliver_steering, record_messages
from flowgraph.ledger.store import Ledger, NodeRecord, now_iso
from flowgraph.logs import get_logger
from flowgraph.models.router import ModelLimits, Served
from flowgraph.models.seam import Model, ModelRequest, Usage
from flowgraph.money.accounting import Spend
from flowgraph.money.budget import Budget
from flowgraph.money.pricing import DEFAULT_PRICING, Pricing

__all__ = ["run_graph"]

FINAL_OK = "passed"
INBOX_POLL_SECONDS = 0.2


async def run_graph(
    graph: Graph,
    input: Mapping[str, Any] | None,
    *,
    client: Model | None = None,
    run_dir: str | Path | None = None,
    max_concurrency: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    retry_backoff: float = 0.5,
    run_id: str | None = None,
    max_cost_usd: float | None = None,
    pricing: Pricing | None = None,
    limits: Mapping[str, ModelLimits] | None = None,
    max_items: int | None = None,
    inbox: Inbox | None = None,
) -> RunResult:
    """Run (or resume) ``graph``; see ``Graph.run``."""
    valid = graph.validate()
    ledger = open_ledger(valid, input, run_dir, run_id)
    try:
        run = _Run(valid, ledger, client or graph.client, on_event)
        run.max_items = max_items
        run.inbox = inbox or Inbox(ledger.run_dir, ledger.doc.inbox_offset)
        run.pricing = pricing or graph.pricing or DEFAULT_PRICING
        run.limits = resolve_limits(limits if limits is not None else graph.limits)
        run.max_cost_usd = max_cost_usd if max_cost_usd is not None else graph.max_cost_usd
        return await run.execute(max_concurrency or graph.max_concurrency, retry_backoff)
    finally:
        ledger.close()


def _jsonable(name: str, value: Any) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise NodeError(
            f"node {name!r} returned a {type(value).__name__}, which cannot be stored as JSON; "
            "return str, numbers, lists, dicts or a pydantic model"
        ) from None
    return value


class _Run:
    """The state of one run while it executes; also the scheduler's ``Hooks``."""

    def __init__(
        self,
        valid: ValidGraph,
        ledger: Ledger,
        client: Model | None,
        on_event: Callable[[Event], None] | None,
    ) -> None:
        self.valid = valid
        self.ledger = ledger
        self.client = client
        self.on_event = on_event
        self.doc = ledger.doc
        self.log = get_logger(run_id=self.doc.run_id, graph=valid.name)
        self._log_on = logging.getLogger("flowgraph").isEnabledFor(logging.INFO)
        self.listening = self._log_on or on_event is not None
        self.outputs: dict[str, Any] = {}
        self.reports: dict[str, NodeReport] = {}
        self.spends: dict[str, Spend] = {}
        self.pricing: Pricing = DEFAULT_PRICING
        self.limits: dict[str, ModelLimits] = {}
        self.max_cost_usd: float | None = None
        self.calls: Calls | None = None
        self.native_advisor = NativeSupport(False, self.log.warning)
        self.max_items: int | None = None
        self.inbox = Inbox(None, 0)
        self.executed: list[str] = []
        # Absolute, so tools and subprocesses that change directory still find it.
        self.run_dir = ledger.run_dir.resolve() if ledger.run_dir else None
        self.workspace = (
            self.run_dir / "workspace"
            if self.run_dir
            else Path(tempfile.gettempdir()) / f"flowgraph-{self.doc.run_id}"
        )
        ledger.on_snapshot(describe)

    # -- planning ---------------------------------------------------------------------------

    def _plan(self) -> list[str]:
        """Which nodes to run: all but those passed with an unchanged fingerprint."""
        todo: list[str] = []
        # Fingerprints serve resume; a run without a directory cannot be resumed, so it does
        # not pay for hashing every node's definition.
        prints: Mapping[str, str] = (
            self.valid.fingerprints if self.ledger.run_dir is not None else defaultdict(str)
        )
        records = self.doc.nodes
        for name in self.valid.order:
            record = records.get(name)
            if (
                record is not None
                and record.status == FINAL_OK
                and record.fingerprint == prints[name]
            ):
                self.outputs[name] = self.ledger.output(name)
                continue
            todo.append(name)
            node = self.valid.nodes[name]
            if record is None or record.status != "pending" or record.fingerprint != prints[name]:
                # set_node: the snapshot written before any node starts makes these durable.
                role = node.role.name if isinstance(node, RoleNode) else None
                self.ledger.set_node(
                    name, status="pending", fingerprint=prints[name], kind=node.kind, role=role
                )
        return todo

    async def execute(self, max_concurrency: int | None, backoff: float) -> RunResult:
        self._read_inbox()  # approvals and steering sent while no process drove the run
        todo = self._plan()
        if todo:
            self.ledger.update_run(status="running")
            self.ledger.snapshot()
        if self.listening:
            self._announce(todo)
        nodes = self.valid.nodes
        if any(type(nodes[n]) is not StepNode and role_tasks(nodes[n]) for n in todo):
            client = self.client or default_client()
            self.native_advisor = NativeSupport(
                bool(getattr(client, "supports_advisor_tool", False)), self.log.warning
            )
            self.calls = Calls(
                client,
                self.pricing,
                self._budget(),
                self.limits,
                self.emit,
            )
        scheduler = Scheduler(
            self.valid.order,
            {n: nodes[n].after for n in self.valid.order},
            todo,
            self._run_node,
            self,
            max_concurrency=max_concurrency,
            timeouts={n: nodes[n].timeout for n in todo},
            retries={n: nodes[n].retries for n in todo},
            should_retry=self._should_retry,
            backoff=backoff,
            dependents=self.valid.dependents,
        )
        poller = asyncio.create_task(self._poll_inbox())
        try:
            await scheduler.run()
        except BaseException:
            self.ledger.update_run(status="interrupted")
            raise
        finally:
            poller.cancel()
            self._read_inbox()
        return self._finish()

    def _announce(self, todo: list[str]) -> None:
        self.emit(
            RunStarted(
                self.doc.run_id,
                self.valid.name,
                self.valid.order,
                tuple(todo),
                str(self.ledger.run_dir) if self.ledger.run_dir else None,
                {n: node.model for n, node in self.valid.nodes.items()},
            )
        )
        planned = set(todo)
        for name in self.valid.order:
            if name not in planned:
                self.emit(NodeFinished(name, FINAL_OK, reused=True))

    # -- the inbox: approvals and steering from people, from any process ---------------------

    async def _poll_inbox(self) -> None:
        while True:
            await asyncio.sleep(INBOX_POLL_SECONDS)
            self._read_inbox()

    def _read_inbox(self) -> None:
        record_messages(self.ledger, self.inbox)

    def _steering(self, record: str) -> Callable[[int], list[str]]:
        """What a running role node calls before each turn: messages not yet delivered."""

        def take(turn: int) -> list[str]:
            self._read_inbox()  # a message sent a moment ago still makes this turn
            return deliver_steering(self.ledger, record, turn)

        return take

    def _budget(self) -> Budget:
        records = self.doc.nodes
        node_limits = {
            n: node.role.max_cost_usd
            for n, node in self.valid.nodes.items()
            if isinstance(node, RoleNode)
        }
        spent = {n: Spend(r.spend).known_usd for n, r in records.items() if r.spend}
        return Budget(
            self.pricing, self.max_cost_usd, node_limits, sum(spent.values()), node_spent=spent
        )

    def _should_retry(self, name: str, error: BaseException) -> bool:
        if isinstance(self.valid.nodes[name], RoleNode):
            return isinstance(error, TransientModelError)
        return not isinstance(error, NodeError)

    def _finish(self) -> RunResult:
        statuses = {n: self.doc.nodes[n].status for n in self.valid.order}
        errors = {n: r.error for n in self.valid.order if (r := self.doc.nodes[n]).error}
        found = set(statuses.values())
        if found == {FINAL_OK}:
            status = FINAL_OK
        elif "budget_exceeded" in found:
            status = "budget_exceeded"
        elif found & {"failed", "skipped", "interrupted"}:
            status = "failed"
        elif "waiting_approval" in found:
            status = "waiting_approval"
        else:
            status = "incomplete"  # a checklist with items left for the next run
        self.ledger.update_run(status=status)
        counts: dict[str, int] = {}
        for s in statuses.values():
            counts[s] = counts.get(s, 0) + 1
        self.emit(RunFinished(self.doc.run_id, status, counts))
        return RunResult(
            run_id=self.doc.run_id,
            status=status,
            outputs=dict(self.outputs),
            statuses=statuses,
            errors={n: e for n, e in errors.items() if e is not None},
            run_dir=self.ledger.run_dir,
            executed=tuple(self.executed),
        )

    # -- running one node -------------------------------------------------------------------

    async def _run_node(self, name: str, attempt: int) -> Any:
        node = self.valid.nodes[name]
        ctx = Context(
            node=name,
            input=self.doc.input,
            outputs=Upstream(self.valid, name, self.outputs),
            run_dir=self.run_dir,
            workspace=self.workspace,
        )
        if isinstance(node, RoleNode):
            output = await self._run_role(name, node, ctx)
        elif isinstance(node, StepNode):
            output = await node.func(ctx)
        else:
            output = await patterns.execute(node, ctx, self)
        return _jsonable(name, output)

    async def _run_role(self, record: str, node: RoleNode, ctx: Context) -> Any:
        if node.name != record:  # a pattern's work: it is called, billed and steered as its record
            node = dataclasses.replace(node, name=record)
        report = self.reports[record] = NodeReport()
        advisor = self._advisor_session(node)
        report.advisor = advisor
        return await run_role(node, ctx, self._call, report, self.emit, advisor,
                              self._steering(record))  # fmt: skip

    # -- Env: what patterns use to run their work as sub-records ------------------------------

    def record(self, name: str) -> NodeRecord | None:
        return self.doc.nodes.get(name)

    def update(self, name: str, **fields: Any) -> None:
        self.ledger.update_node(name, **fields)

    def update_run(self, **fields: Any) -> None:
        self.ledger.update_run(**fields)

    async def run_unit(
        self, record: str, unit: Work, ctx: Context, *, parent: str, key: str
    ) -> Any:
        """Run a role or step as sub-record ``record``; reuse it if it passed as it is now."""
        top = parent.split(".", 1)[0] if parent not in self.valid.fingerprints else parent
        blob = json.dumps([self.valid.fingerprints[top], unit.spec(), key], default=str)
        fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:24]
        previous = self.doc.nodes.get(record)
        if previous and previous.status == FINAL_OK and previous.fingerprint == fingerprint:
            return self.ledger.output(record)
        role = unit.role.name if isinstance(unit, RoleNode) else None
        self.ledger.update_node(
            record, status="running", kind=unit.kind, parent=parent, fingerprint=fingerprint,
            role=role, attempts=(previous.attempts if previous else 0) + 1,
            started_at=now_iso(), finished_at=None, error=None,
        )  # fmt: skip
        try:
            if isinstance(unit, RoleNode):
                output = _jsonable(record, await self._run_role(record, unit, ctx))
            else:
                output = _jsonable(record, await unit.func(ctx))
        except asyncio.CancelledError:
            self.ledger.update_node(record, status="interrupted", **self._report(record))
            raise
        except Exception as exc:
            self.ledger.update_node(record, status="failed", error=str(exc) or type(exc).__name__,
                                    finished_at=now_iso(), **self._report(record))  # fmt: skip
            raise
        self.ledger.update_node(record, status="passed", output=output, finished_at=now_iso(),
                                **self._report(record))  # fmt: skip
        return output

    def _advisor_session(self, node: RoleNode) -> AdvisorSession | None:
        if node.advisor is None:
            return None
        assert self.calls is not None
        record = self.doc.nodes[node.name]
        pricing = self.pricing

        def price(usage: Mapping[str, Any], model: str) -> float | None:
            return pricing.price(Usage.from_dict(usage), model).usd

        # Uses spent by earlier attempts of this node still count: the cap is per node.
        used = sum(1 for c in record.consults if c.get("outcome") == "ok")
        session = AdvisorSession(
            node.advisor, node.advisor_model, node.advisor_fallbacks, node.model, node.name,
            self.native_advisor, self._call, price, used=used, consults=list(record.consults),
        )  # fmt: skip

        def recorded(consult: dict[str, Any]) -> None:
            # Journaled at once: a consult is paid work, it must survive a crash.
            self.ledger.update_node(node.name, consults=list(session.consults))
            self.emit(
                AdvisorConsulted(
                    node.name, consult["turn"], consult["mode"], consult["trigger"],
                    consult["model"], consult["outcome"], consult["input_tokens"],
                    consult["output_tokens"], consult["cost_usd"],
                )
            )  # fmt: skip

        session.on_record = recorded
        return session

    async def _call(
        self, request: ModelRequest, fallbacks: Sequence[str], kind: str = "executor"
    ) -> Served:
        assert self.calls is not None
        name = request.node
        spend = self.spends.get(name)
        if spend is None:  # counting goes on across attempts and processes: paid is paid
            spend = self.spends[name] = Spend(self.doc.nodes[name].spend)
        served = await self.calls.call(request, fallbacks, spend, kind)
        self.ledger.update_node(
            name, usage=spend.usage, cost_usd=spend.cost_usd, spend=spend.rows
        )  # fmt: skip
        return served

    # -- Hooks: the scheduler tells us, we record and emit ------------------------------------

    def started(self, name: str, attempt: int) -> None:
        self.executed.append(name)
        record = self.doc.nodes[name]
        self.ledger.update_node(
            name, status="running", attempts=record.attempts + 1,
            started_at=now_iso(), finished_at=None, error=None,
        )  # fmt: skip
        if self.listening:  # events cost a little per node; build them only for a listener
            self.emit(NodeStarted(name, attempt, self.valid.nodes[name].model))

    def passed(self, name: str, output: Any) -> None:
        self.outputs[name] = output
        report = self._report(name) if name in self.reports else {}
        self.ledger.update_node(
            name, status="passed", output=output, finished_at=now_iso(), **report
        )  # fmt: skip
        if self.listening:
            self.emit(NodeFinished(name, "passed"))

    def failed(self, name: str, error: BaseException) -> None:
        message = str(error) or type(error).__name__
        status = "budget_exceeded" if isinstance(error, BudgetError) else "failed"
        self.ledger.update_node(
            name, status=status, error=message, finished_at=now_iso(), **self._report(name)
        )
        self.emit(NodeFinished(name, status, message))

    def retrying(self, name: str, attempt: int, error: BaseException, delay: float) -> None:
        self.emit(NodeRetrying(name, attempt, str(error), delay))

    def skipped(self, name: str, because: str) -> None:
        self.ledger.update_node(name, status="skipped", error=because)
        self.emit(NodeFinished(name, "skipped", because))

    def paused(self, name: str, pause: Paused) -> None:
        self.ledger.update_node(name, status=pause.status, error=str(pause), finished_at=now_iso())
        self.emit(NodeFinished(name, pause.status, str(pause)))

    def interrupted(self, name: str) -> None:
        self.ledger.update_node(
            name, status="interrupted", error="the run was stopped while this node ran",
            **self._report(name),
        )  # fmt: skip
        self.emit(NodeFinished(name, "interrupted"))

    def _report(self, name: str) -> dict[str, Any]:
        report = self.reports.pop(name, None)
        if report is None:
            return {}
        if report.transcript and self.run_dir is not None:
            # The audit archive: each turn's request metadata and the full conversation,
            # responses (advisor and fallback blocks included) as the provider sent them.
            # Compact JSON: indent= falls back to the pure-Python encoder on the event loop.
            archive = {"node": name, "requests": report.requests, "messages": report.transcript}
            blob = json.dumps(archive, default=str).encode()
            self.ledger.write_artifact(f"transcripts/{name}.json", blob, durable=False)
        fields: dict[str, Any] = {
            "turns": report.turns,
            "tool_calls": report.tool_calls,
            "model": report.model,
            "served": report.served,
        }
        if report.advisor is not None:
            fields["consults"] = report.advisor.consults
        return fields

    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)
        if self._log_on:
            node = getattr(event, "node", None)
            fields = {k: v for k, v in _fields(event).items() if k != "node"}
            self.log.info(type(event).__name__, node=node, **fields)


def _fields(event: Event) -> dict[str, Any]:
    return {k: getattr(event, k) for k in event.__slots__}
