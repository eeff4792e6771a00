"""Execution: one run of a validated graph — plan what to run, run it on the scheduler (each node
by its kind), and finish with the run's result.

The parts it joins each have one job: the ledger says what is already done, the ``Recorder``
writes every change and emits it, the ``CallPath`` reaches the models, the scheduler orders the
work, and the kind table below says how each node kind runs. Resume rule: a node recorded
``passed`` whose fingerprint is unchanged is never run again; its stored output feeds its
dependents.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import re
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from flowgraph import patterns
from flowgraph.agent.approvals import ApprovalNeeded, Approvals
from flowgraph.agent.loop import run_role
from flowgraph.compile.validation import UnpricedModelWarning, ValidGraph
from flowgraph.declare.context import Context
from flowgraph.declare.names import top_of
from flowgraph.declare.nodes import RoleNode, RouteNode, StepNode, Work
from flowgraph.errors import ConfigError
from flowgraph.events import RunStarted
from flowgraph.execute.calls import CallPath, check_credentials, default_client, resolve_limits
from flowgraph.execute.emitter import Emitter
from flowgraph.execute.executor import Placed, runs_anywhere
from flowgraph.execute.heap import run_heap
from flowgraph.execute.opening import Workplace, open_ledger
from flowgraph.execute.options import RunOptions
from flowgraph.execute.recorder import Recorder, RunState, storable
from flowgraph.execute.result import RunResult
from flowgraph.execute.scheduler import Scheduler
from flowgraph.execute.summary import describe
from flowgraph.execute.upstream import Upstream
from flowgraph.execute.workspaces import NodeWorkspace
from flowgraph.ledger.inbox import Inbox
from flowgraph.ledger.schema import LedgerDoc, NodeRecord
from flowgraph.ledger.store import Ledger
from flowgraph.logs import get_logger
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.status import RunStatus
from flowgraph.tools import WRITERS
from flowgraph.tools.mcp import McpHub, MCPServer

__all__ = ["Execution", "run_graph"]

INBOX_POLL_SECONDS = 0.2

NodeRunner = Callable[[Any, Context], Awaitable[Any]]


async def run_graph(
    valid: ValidGraph,
    input: Mapping[str, Any] | None,
    options: RunOptions,
    inbox: Inbox | None = None,
) -> RunResult:
    """Run (or resume) ``valid`` with ``options``; see ``Graph.run``."""
    with run_heap():
        return await _run_graph(valid, input, options, inbox)


async def _run_graph(
    valid: ValidGraph,
    input: Mapping[str, Any] | None,
    options: RunOptions,
    inbox: Inbox | None,
) -> RunResult:
    new = not (options.run_dir and Ledger.exists(options.run_dir))
    options = options.with_endpoints()
    if options.client is None and new and _has_role_tasks(valid):
        check_credentials()  # before a run directory exists that would look like a run
    if options.executor is not None:  # an unreachable cluster leaves no run directory behind
        await options.executor.start()
    ledger = open_ledger(valid, input, options)
    try:
        # A resumed run keeps the settings it started with, unless it was given its own.
        options = options.with_settings(ledger.doc.settings).with_endpoints()
        servers = mcp_servers_of(valid)
        if not servers:
            result = await Execution(valid, ledger, options, inbox).run()
        else:
            async with McpHub(servers) as hub:  # started for the run, stopped when it ends
                result = await Execution(valid, ledger, options, inbox, hub).run()
    finally:
        ledger.close()
    if ledger.failure is not None:  # the last snapshot could not be written
        raise ledger.failure
    return result


def mcp_servers_of(valid: ValidGraph) -> list[MCPServer]:
    """Every MCP server a role of the graph uses, once; one name must mean one server."""
    found: dict[str, MCPServer] = {}
    for node in valid.nodes.values():
        for task, _ in node.role_tasks():
            for server in task.role.mcp_servers:
                if found.setdefault(server.name, server) != server:
                    raise ConfigError(
                        f"two different MCP servers are named {server.name!r}; give each its "
                        "own name"
                    )
    return list(found.values())


def _has_role_tasks(valid: ValidGraph) -> bool:
    return any(type(n) is not StepNode and n.role_tasks() for n in valid.nodes.values())


class Execution:
    """One run of a validated graph over its (open) ledger.

    Args:
        valid: the graph.
        ledger: the run's ledger, created or resumed.
        options: how the run goes (already laid over the graph's defaults).
        inbox: in-process messages (``Run.steer``) for a run without a directory.
    """

    def __init__(
        self,
        valid: ValidGraph,
        ledger: Ledger,
        options: RunOptions,
        inbox: Inbox | None = None,
        mcp: McpHub | None = None,
    ) -> None:
        self.valid = valid
        self.mcp = mcp
        self.ledger = ledger
        self.options = options
        self.place = Workplace.of(ledger, options.workspace)
        log = get_logger(run_id=ledger.doc.run_id, graph=valid.name)
        self.emit = Emitter(options.on_event, log)
        self.state = RunState()
        self.recorder = Recorder(
            ledger,
            self.state,
            self.emit,
            {n: node.model for n, node in valid.nodes.items()},
            inbox or Inbox(ledger.run_dir, ledger.doc.inbox_offset),
        )
        ledger.on_snapshot(describe)
        self.recorder.read_inbox()  # approvals and steering sent while no process drove the run
        self.todo = self._plan()
        self.calls = self._call_path(log) if self._needs_models() else None
        self._runners: dict[type, NodeRunner] = {
            RoleNode: self._run_role,
            StepNode: self._run_step,
            **{kind: self._pattern(run) for kind, run in patterns.RUNNERS.items()},
        }

    # -- planning ---------------------------------------------------------------------------

    def _plan(self) -> list[str]:
        """Which nodes to run: all but those passed with an unchanged fingerprint."""
        todo: list[str] = []
        # Fingerprints serve resume; a run without a directory cannot be resumed, so it does
        # not pay for hashing every node's definition.
        prints: Mapping[str, str] = (
            self.valid.fingerprints if self.ledger.run_dir is not None else defaultdict(str)
        )
        records = self.ledger.doc.nodes
        for name in self.valid.order:
            record = records.get(name)
            fingerprint = prints[name]
            if self.mcp is not None:
                fingerprint = self._with_mcp(name, fingerprint)
            if (
                record is not None
                and record.status == "passed"
                and record.fingerprint == fingerprint
            ):
                self.state.outputs[name] = self.ledger.output(name)
                continue
            todo.append(name)
            if record is None or record.status != "pending" or record.fingerprint != fingerprint:
                node = self.valid.nodes[name]
                self.recorder.planned(name, fingerprint, node.kind, node.role_name)
        return todo

    def _with_mcp(self, name: str, fingerprint: str) -> str:
        """A node's fingerprint with the schemas its MCP servers listed folded in."""
        assert self.mcp is not None
        servers = [s for task, _ in self.valid.nodes[name].role_tasks()
                   for s in task.role.mcp_servers]  # fmt: skip
        digest = self.mcp.digest(servers)
        if not digest:
            return fingerprint
        return hashlib.sha256(f"{fingerprint}:{digest}".encode()).hexdigest()[:24]

    def _needs_models(self) -> bool:
        nodes = self.valid.nodes
        return any(type(nodes[n]) is not StepNode and nodes[n].role_tasks() for n in self.todo)

    def _call_path(self, log: Any) -> CallPath:
        pricing = self.options.pricing or DEFAULT_PRICING
        # Said before the first call, with the prices this run will use (a resume's recorded
        # --prices included), not at graph.validate(), which knows no run's prices.
        for message in self.valid.unpriced(pricing):
            warnings.warn(message, UnpricedModelWarning, stacklevel=2)
        return CallPath(
            self.options.client or default_client(),
            self.valid,
            self.recorder,
            self.emit,
            pricing=pricing,
            limits=resolve_limits(self.options.limits),
            max_cost_usd=self.options.max_cost_usd,
            log=log,
            advisor_budget=self.options.advisor_budget,
        )

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run what the plan says, then record and return how the run ended."""
        if self.todo:
            self.ledger.update_run(status=RunStatus.RUNNING)
            self.ledger.snapshot()
        if self.emit.listening:
            self._announce()
        nodes = self.valid.nodes
        scheduler = Scheduler(
            self.valid.order,
            {n: nodes[n].after for n in self.valid.order},
            self.todo,
            self._run_node,
            self.recorder,
            max_concurrency=self.options.max_concurrency,
            timeouts={n: nodes[n].timeout for n in self.todo},
            retries={n: nodes[n].retries for n in self.todo},
            should_retry=lambda name, error: nodes[name].retryable(error),
            backoff=self.options.backoff,
            dependents=self.valid.dependents,
            untaken=self._untaken if self._routes else None,
        )
        poller = asyncio.create_task(self._poll_inbox())
        main = asyncio.current_task()
        assert main is not None

        def stop(_: BaseException) -> None:  # nothing more can be recorded: the run stops
            main.cancel()

        self.ledger.on_failure(stop)
        try:
            await scheduler.run()
        except BaseException:
            if self.ledger.failure is not None:
                raise self.ledger.failure from None
            self.ledger.update_run(status=RunStatus.INTERRUPTED)
            raise
        finally:
            poller.cancel()
            # Wait for it to end: a run stopped by an exception that escapes the event loop
            # (KeyboardInterrupt raised in a tool) would leave it pending, destroyed later.
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            self.recorder.read_inbox()
        return self._finish()

    def _announce(self) -> None:
        self.emit(
            RunStarted(
                self.ledger.doc.run_id,
                self.valid.name,
                self.valid.order,
                tuple(self.todo),
                str(self.ledger.run_dir) if self.ledger.run_dir else None,
                {n: node.model for n, node in self.valid.nodes.items()},
            )
        )
        planned = set(self.todo)
        for name in self.valid.order:
            if name not in planned:
                self.recorder.reused(name)

    @functools.cached_property
    def _routes(self) -> dict[str, RouteNode]:
        return {n: node for n, node in self.valid.nodes.items() if type(node) is RouteNode}

    def _untaken(self, name: str) -> Collection[str]:
        """The dependents a route that passed did not choose (its output names the choice,
        read back from the ledger on resume: the classifier is not asked again)."""
        route = self._routes.get(name)
        output = self.state.outputs.get(name) if route is not None else None
        if route is None or not isinstance(output, dict):
            return ()
        return route.not_chosen(str(output.get("route")))

    async def _poll_inbox(self) -> None:
        while True:
            await asyncio.sleep(INBOX_POLL_SECONDS)
            self.recorder.read_inbox()

    def _finish(self) -> RunResult:
        records = self.ledger.doc.nodes
        statuses = {n: records[n].status for n in self.valid.order}
        status = RunStatus.of_nodes(statuses.values())
        counts: dict[str, int] = {}
        for s in statuses.values():
            counts[s] = counts.get(s, 0) + 1
        self.recorder.finished(status, counts)
        errors = {n: r.error for n in self.valid.order if (r := records[n]).error is not None}
        return RunResult(
            run_id=self.ledger.doc.run_id,
            status=status,
            outputs=dict(self.state.outputs),
            statuses=statuses,
            errors={n: e for n, e in errors.items() if e is not None},
            run_dir=self.ledger.run_dir,
            executed=tuple(self.state.executed),
        )

    # -- one node, by its kind ----------------------------------------------------------------

    async def _run_node(self, name: str, attempt: int) -> Any:
        node = self.valid.nodes[name]
        place = self.place
        ctx = Context(name, self.ledger.doc.input, Upstream(self.valid, name, self.state.outputs),
                      place.run_dir, place.workspace)  # fmt: skip
        if type(node) is StepNode and self.options.executor is None:  # the common case
            return storable(name, await node.func(ctx))
        return storable(name, await self._runners[type(node)](node, ctx))

    async def _run_step(self, node: StepNode, ctx: Context) -> Any:
        executor = self.options.executor
        if executor is None:
            return await node.func(ctx)
        return await executor.run_step(node, ctx, self._placer(ctx.node))

    def _placer(self, record: str) -> Placed:
        def placed(where: str) -> None:
            self.recorder.update(record, placed=where)

        return placed

    async def _run_role(self, node: RoleNode, ctx: Context) -> Any:
        record = ctx.node
        if node.name != record:  # a pattern's work: it is called, billed and steered as its record
            node = dataclasses.replace(node, name=record)
        assert self.calls is not None  # built whenever the plan holds a node with a model
        report = self.recorder.report_for(record)
        advisor = self.calls.advisor_session(node)
        report.advisor = advisor
        extra = self.mcp.tools_for(node.role.mcp_servers) if self.mcp else ()
        previous = self.recorder.record(record)
        pending = previous.pending_approval if previous else None
        approvals = Approvals(node.role, pending, previous.decision if previous else None,
                              str(self.place.run_dir or "<run dir>"))  # fmt: skip
        executor = self.options.executor
        if executor is not None and runs_anywhere(node, executor.shared_workspace):
            steering = self.recorder.handover_for(record, report.replay)
            return await executor.run_role(node, ctx, self.calls.call, report, self.emit,
                                           self._placer(record), steering)  # fmt: skip
        own = None
        if WRITERS & {t.name for t in node.role.tool_list}:
            base = pending.get("workspace_base") if pending and approvals.resuming else None
            own = NodeWorkspace.open(ctx.workspace, self._workspaces_home(), record, base)
            ctx = dataclasses.replace(ctx, workspace=own.work)
        try:
            output = await run_role(node, ctx, self.calls.call, report, self.emit, advisor,
                                    self.recorder.steering_for(record), extra,
                                    approvals)  # fmt: skip
        except ApprovalNeeded as pause:  # kept so that the approved call resumes the talk
            state = {**pause.state, "workspace_base": own.base if own else None}
            self.recorder.update(record, pending_approval=state, decision=None)
            raise
        if pending:
            self.recorder.update(record, pending_approval=None, decision=None)
        if own is not None:
            self._land(record, own)
        return output

    def _workspaces_home(self) -> Path:
        if self.place.run_dir is not None:
            return self.place.run_dir / "worktrees"
        return self.place.workspace.parent / f"{self.place.workspace.name}-nodes"

    def _land(self, record: str, own: NodeWorkspace) -> None:
        """Bring a writer node's changes back (or fail it on a conflict) and keep its diff."""
        changed, diff = own.merge_back(record)
        fields: dict[str, Any] = {"changed_files": changed}
        if diff and self.place.run_dir is not None:
            name = "diffs/" + re.sub(r"[^A-Za-z0-9_.-]", "_", record) + ".diff"
            (self.place.run_dir / "diffs").mkdir(exist_ok=True)
            (self.place.run_dir / name).write_text(diff, encoding="utf-8")
            fields["diff_file"] = name
        self.recorder.update(record, **fields)
        own.close()

    def _pattern(self, run: patterns.PatternRunner) -> NodeRunner:
        async def run_pattern(node: Any, ctx: Context) -> Any:
            return await run(node, ctx, self)

        return run_pattern

    # -- patterns.Env: what patterns use to run their work as sub-records ----------------------

    @property
    def run_dir(self) -> Path | None:
        return self.place.run_dir

    @property
    def workspace(self) -> Path:
        return self.place.workspace

    @property
    def doc(self) -> LedgerDoc:
        return self.ledger.doc

    @property
    def max_items(self) -> int | None:
        return self.options.max_items

    def record(self, name: str) -> NodeRecord | None:
        return self.recorder.record(name)

    def update(self, name: str, **fields: Any) -> None:
        self.recorder.update(name, **fields)

    def update_run(self, **fields: Any) -> None:
        self.recorder.update_run(**fields)

    async def run_unit(
        self, record: str, unit: Work, ctx: Context, *, parent: str, key: str
    ) -> Any:
        """Run a role or step as sub-record ``record``; reuse it if it passed as it is now."""
        prints = self.valid.fingerprints
        top = parent if parent in prints else top_of(parent)
        blob = json.dumps([prints[top], unit.spec(), key], default=str)
        fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:24]
        previous = self.recorder.record(record)
        if previous and previous.status == "passed" and previous.fingerprint == fingerprint:
            return self.ledger.output(record)
        self.recorder.sub_started(record, kind=unit.kind, parent=parent,
                                  fingerprint=fingerprint, role=unit.role_name,
                                  model=unit.model)  # fmt: skip
        if ctx.node != record:  # the unit runs, is billed and is steered as its record
            ctx = dataclasses.replace(ctx, node=record)
        try:
            output = storable(record, await self._runners[type(unit)](unit, ctx))
        except asyncio.CancelledError:
            self.recorder.sub_interrupted(record)
            raise
        except Exception as exc:
            self.recorder.sub_failed(record, exc)
            raise
        self.recorder.sub_passed(record, output)
        return output
