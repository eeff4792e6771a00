"""RayExecutor: function steps as Ray tasks and role nodes' tool loops in async Ray actors,
spread over a Ray cluster, while the coordinator (this process) keeps the ledger and the
model-call path.

Who does what:

- A function step (a top-level step or a map's item) is a Ray task with the resources asked
  for it (one CPU by default). Ray re-runs it if its node dies: steps are at-least-once, as
  in a local run.
- A role node's loop runs in a ``RoleWorker`` actor (one per cluster node, each running many
  loops at once). Each model call comes back here and goes through the run's ``CallPath``,
  so per-model limits, the circuit breaker, the run budget and every recorded cost are exactly
  those of a local run; each journal delta comes back here as it happens and is journaled
  at once. If the actor's node dies, the loop is dispatched again (to a live actor) from the
  deltas journaled so far: recorded turns are not asked or paid for again.
- Steering messages for a role node are read here (the inbox) and ride to its loop with the
  dispatch and with each model call's answer; they count as delivered only when the loop's
  ``s`` delta comes back, so a loop dispatched again after a lost worker is handed them again.
- The mailbox actor (the answers to model calls) lives on the coordinator's own node.

Ray is imported when the executor starts, never when flowgraph is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from flowgraph.agent.loop import Caller, NodeReport
from flowgraph.declare.context import Context
from flowgraph.declare.names import node_path, top_of
from flowgraph.declare.nodes import RoleNode, StepNode
from flowgraph.distributed.ray_worker import REPORT_FIELDS, Mailbox, RoleWorker, run_step_task
from flowgraph.errors import ConfigError, NodeError
from flowgraph.events import Event
from flowgraph.execute.executor import Placed, Steering

__all__ = ["RayExecutor", "RayUnavailable"]

CONNECT_TIMEOUT_S = 5.0
ROLE_LOOPS_PER_ACTOR = 1000  # loops wait on models: one actor holds many at once


class RayUnavailable(ConfigError):
    """The cluster cannot be used from here: nothing answers at its address, Ray refused the
    connection, or the ray package is missing.

    Attributes:
        address: the address that was given (``host:port``, ``ray://...``, ``auto``).
        reason: what went wrong, in a few words (the message adds what to do).
    """

    def __init__(self, address: str, reason: str, fix: str = "") -> None:
        super().__init__(f"{reason}; {fix}" if fix else reason)
        self.address = address
        self.reason = reason


class RayExecutor:
    """Runs a graph's function steps and role nodes on a Ray cluster.

    Args:
        address: the cluster (``host:port`` of its head, or ``ray://...``); ``"auto"`` starts
            a local cluster for this process (stopped by ``close``). A new run records it in
            its ledger settings (``ray``): ``flowgraph resume DIR`` goes back there.
        resources: Ray resources to ask for a node's work, by node name (a map's items use
            the map's name): ``{"build": {"CPU": 2}, "triage": {"gpu_box": 1}}``. A step asks
            one CPU unless told; a role loop asks none (it waits on models).
        shared_workspace: every cluster node sees the run's workspace at the same path
            (shared storage); then roles with the built-in coding tools run on the cluster
            too. By default they run on the coordinator, where the workspace is.
        redispatch: how many times a role loop whose worker died is sent to another.
        on_coordinator: names of function steps that run in the coordinator's process, not on
            the cluster: steps that use its workspace or files (run the tests, build), unless
            those are on shared storage. A map's items go by the map's name.

    Example:
        >>> executor = RayExecutor("127.0.0.1:6379", resources={"build": {"CPU": 1}})
        >>> result = await graph.run({"repo": "."}, run_dir="runs/one", executor=executor)
    """

    def __init__(
        self,
        address: str = "auto",
        *,
        resources: Mapping[str, Mapping[str, float]] | None = None,
        shared_workspace: bool = False,
        redispatch: int = 3,
        on_coordinator: Collection[str] = (),
    ) -> None:
        self.address = address
        self.on_coordinator = frozenset(on_coordinator)
        self.resources = {name: dict(asks) for name, asks in (resources or {}).items()}
        self._shared = shared_workspace
        self.redispatch = redispatch
        self._ray: Any = None
        self._mailbox: Any = None
        self._actors: dict[tuple[tuple[str, float], ...], _Pool] = {}
        self._connected_here = False
        self._home = ""
        self._step_task: Any = None
        self._role_actor: Any = None
        self._lost: tuple[type[BaseException], ...] = ()

    @property
    def shared_workspace(self) -> bool:
        """Whether the workspace is on storage every cluster node sees."""
        return self._shared

    # -- connecting ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the cluster (once); a ``ConfigError`` if it cannot be reached."""
        if self._ray is not None:
            return
        try:
            import ray
        except ImportError:
            install = "pip install 'flowgraph-llm[ray]'"
            raise RayUnavailable(
                self.address, f"running on Ray needs the ray package: {install}"
            ) from None
        _by_value(ray)
        if not ray.is_initialized():  # one connection a process: other executors share it
            self._connect(ray)
            self._connected_here = True
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._ray = ray
        self._lost = _lost_errors(ray)
        self._step_task = ray.remote(run_step_task)  # made once: each one is sent to the cluster
        self._role_actor = ray.remote(RoleWorker)
        home = self._home = ray.get_runtime_context().get_node_id()
        self._mailbox = (
            ray.remote(Mailbox)
            .options(num_cpus=0, max_concurrency=100_000,
                     scheduling_strategy=NodeAffinitySchedulingStrategy(home, soft=False))
            .remote()
        )  # fmt: skip

    def _connect(self, ray: Any) -> None:
        if self.address != "auto" and not self.address.startswith("ray://"):
            _reachable(self.address)
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        handlers = _signal_handlers()
        try:
            if self.address == "auto":
                # "local": always a new cluster, never one found on this machine
                ray.init(address="local", include_dashboard=False, **quiet)
            else:
                ray.init(address=self.address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise RayUnavailable(
                self.address,
                f"cannot connect to the Ray cluster at {self.address} ({_first_line(exc)})",
                "check the address (`ray start --head` prints it) or use --ray auto",
            ) from None
        finally:
            _restore(handlers)  # Ray's own SIGTERM handler would kill us before the ledger knew

    def close(self) -> None:
        """Let go of the cluster (disconnect, if this executor connected; a local cluster it
        started is stopped)."""
        if self._ray is None:
            return
        ray, self._ray = self._ray, None
        mine = [a for pool in self._actors.values() for a in pool.actors]
        for actor in [*mine, *([self._mailbox] if self._mailbox is not None else [])]:
            with contextlib.suppress(Exception):  # already gone with its node
                ray.kill(actor)
        self._actors.clear()
        self._mailbox = None
        if self._connected_here:
            ray.shutdown()

    # -- function steps -------------------------------------------------------------------------

    async def run_step(self, node: StepNode, ctx: Context, placed: Placed) -> Any:
        """Run the step as a Ray task and return its output (its own error, raised)."""
        if _named(ctx.node, self.on_coordinator) is not None:
            return await node.func(ctx)
        ray = self._connected()
        asks = {"num_cpus": 1.0, **self._asks(ctx.node)}
        cpus = asks.pop("num_cpus")
        remote = self._step_task.options(
            num_cpus=cpus, resources=asks or None, max_retries=3, name=f"step {ctx.node}"
        )
        ref = remote.remote(node.func, _portable(ctx))
        try:
            output, where = await ref
        except ray.exceptions.RayTaskError as failed:
            raise _cause(failed) from None
        except asyncio.CancelledError:
            ray.cancel(ref)
            raise
        placed(where)
        return output

    # -- role nodes -----------------------------------------------------------------------------

    async def run_role(
        self,
        node: RoleNode,
        ctx: Context,
        call: Caller,
        report: NodeReport,
        emit: Callable[[Event], None],
        placed: Placed,
        steering: Steering | None = None,
    ) -> Any:
        """Run the role's loop in a worker actor; dispatch it again if its worker dies."""
        self._connected()
        deltas = list(report.replay)
        note = report.note
        steered: Steering = steering or _NoSteering()

        def noted(delta: dict[str, Any]) -> None:
            deltas.append(delta)
            if note is not None:
                note(delta)
            steered.noted(delta)  # a journaled `s` delta: its messages are delivered

        portable = _portable(ctx)
        pool = self._pool(ctx.node)
        unjournaled = _Answered()
        for attempt in range(self.redispatch + 1):
            actor = pool.pick()
            try:
                return await self._follow(actor, node, portable, list(deltas), call, report,
                                          emit, placed, noted, unjournaled, steered)  # fmt: skip
            except self._lost as lost:
                pool.replace(actor, self._spare)
                if attempt == self.redispatch:
                    raise NodeError(
                        f"node {ctx.node!r}: its Ray worker was lost {attempt + 1} times "
                        f"({_first_line(lost)}); check the cluster's nodes and resume"
                    ) from None
            finally:
                pool.done(actor)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _follow(
        self,
        actor: Any,
        node: RoleNode,
        ctx: Context,
        replay: list[dict[str, Any]],
        call: Caller,
        report: NodeReport,
        emit: Callable[[Event], None],
        placed: Placed,
        noted: Callable[[dict[str, Any]], None],
        answered: _Answered,
        steering: Steering,
    ) -> Any:
        """Follow one dispatch of a loop: journal its deltas, serve its calls, return its
        output (or raise its error). ``answered`` holds the last answer the loop was given
        whose turn it has not journaled yet: paid for, so a dispatch after a lost worker is
        handed it instead of asking again. Steering messages ride along: those pending (or
        handed to a lost dispatch and not journaled) with the dispatch, the rest with the
        answer to each model call."""
        key = uuid.uuid4().hex
        listening = bool(getattr(emit, "listening", True))
        primed, answered.served = answered.served, None
        texts = steering.take(again=True)
        stream = actor.run.remote(self._mailbox, key, node, ctx, replay, listening, primed, texts)
        waiting: str | None = None
        passed_on: dict[str, Callable[[Any], None]] = {  # what the coordinator only hands on
            "event": emit,
            "placed": placed,
            "begin": report.begin or (lambda task: None),
        }
        try:
            async for ref in stream:
                message = await ref
                kind = message[0]
                if kind == "note":
                    noted(message[1])
                    if message[1].get("k") == "a":  # the answer's turn is in the journal now
                        primed = answered.served = None
                elif kind == "call":
                    _, n, request, fallbacks = message
                    waiting = f"{key}:{n}"
                    answered.served = await call(request, fallbacks)
                    self._mailbox.put.remote(waiting, ("ok", answered.served, steering.take()))
                    waiting = None
                elif kind in passed_on:
                    passed_on[kind](message[1])
                else:
                    for name in REPORT_FIELDS:
                        setattr(report, name, message[2][name])
                    if kind == "error":
                        raise message[1]
                    return message[1]
        except self._lost:
            answered.served = answered.served or primed  # not journaled: hand it on again
            raise
        except BaseException:
            if waiting is not None and self._mailbox is not None:  # let the loop stop there
                self._mailbox.put.remote(waiting, ("stop",))
            with contextlib.suppress(Exception):
                self._ray.cancel(stream)
            raise
        raise NodeError(f"node {node.name!r}: its Ray worker ended without an answer")

    # -- placement ------------------------------------------------------------------------------

    def _asks(self, record: str) -> dict[str, float]:
        """The resources asked for ``record``'s work (by its name, its map's, its top node's)."""
        name = _named(record, self.resources)
        if name is None:
            return {}
        asks = dict(self.resources[name])
        if "CPU" in asks:
            asks["num_cpus"] = asks.pop("CPU")
        return asks

    def _pool(self, record: str) -> _Pool:
        """The role actors for ``record``'s resources: one per live cluster node."""
        asks = self._asks(record)
        shape = tuple(sorted(asks.items()))
        pool = self._actors.get(shape)
        if pool is None:
            live = [n["NodeID"] for n in self._connected().nodes() if n.get("Alive")]
            # Hard placement for the plain pool; asks some nodes lack may go where they fit.
            actors = [self._actor(dict(asks), n, soft=bool(asks)) for n in live]
            pool = self._actors[shape] = _Pool(actors, asks)
        return pool

    def _actor(self, asks: dict[str, float], node_id: str, *, soft: bool = True) -> Any:
        """A role actor on ``node_id`` (``soft``: or anywhere, if it has no room for
        ``asks``). One per node to start with: Ray's soft placement alone may put them all on
        one node."""
        self._connected()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cpus = asks.pop("num_cpus", 0.0)
        where = NodeAffinitySchedulingStrategy(node_id, soft=soft)
        return self._role_actor.options(
            num_cpus=cpus, resources=asks or None, max_concurrency=ROLE_LOOPS_PER_ACTOR,
            max_restarts=0, scheduling_strategy=where,
        ).remote()  # fmt: skip

    def _spare(self, asks: dict[str, float]) -> Any:
        """An actor for one that was lost: on the coordinator's node if it has room (it is
        surely alive; the cluster may not yet know which other node died), else anywhere."""
        return self._actor(asks, self._home)

    def _connected(self) -> Any:
        if self._ray is None:
            raise ConfigError("the Ray executor is not started; call `await executor.start()`")
        return self._ray


class _NoSteering:
    """No steering: for a caller that gives none."""

    def take(self, *, again: bool = False) -> list[str]:
        return []

    def noted(self, delta: dict[str, Any]) -> None:
        return None


class _Answered:
    """The answer a loop's dispatch was given but had not journaled yet, if any."""

    served: Any = None


class _Pool:
    """Role actors and how many loops each is running; a loop goes to the least busy."""

    def __init__(self, actors: list[Any], asks: dict[str, float]) -> None:
        self.actors = actors
        self.load = [0] * len(actors)
        self.asks = asks

    def replace(self, lost: Any, spare: Callable[[dict[str, float]], Any]) -> None:
        """Put a new actor where ``lost`` was (once, however many loops saw it die)."""
        for index, known in enumerate(self.actors):
            if known is lost:
                self.actors[index] = spare(dict(self.asks))
                self.load[index] = 0
                return

    def pick(self) -> Any:
        index = min(range(len(self.actors)), key=self.load.__getitem__)
        self.load[index] += 1
        return self.actors[index]

    def done(self, actor: Any) -> None:
        for index, known in enumerate(self.actors):
            if known is actor and self.load[index] > 0:
                self.load[index] -= 1
                return


def _named(record: str, names: Collection[str]) -> str | None:
    """The name in ``names`` that ``record`` goes by: its own, its map's, its top node's."""
    for name in (record, node_path(record), top_of(record)):
        if name in names:
            return name
    return None


def _portable(ctx: Context) -> Context:
    """``ctx`` as plain data a worker can unpickle: the upstream outputs copied out of their
    lazy view of the whole graph."""
    return Context(ctx.node, dict(ctx.input), dict(ctx.outputs), ctx.run_dir, ctx.workspace,
                   dict(ctx.vars))  # fmt: skip


def _cause(failed: Any) -> BaseException:
    """The step's own exception out of Ray's wrapper (or the wrapper's words)."""
    cause = getattr(failed, "cause", None)
    if isinstance(cause, Exception):
        return cause
    return NodeError(_first_line(failed))


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for work lost with its worker or node (not the work's own failure)."""
    names = ("RayActorError", "ActorUnavailableError", "NodeDiedError", "WorkerCrashedError",
             "ObjectLostError", "OwnerDiedError")  # fmt: skip
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def _by_value(ray: Any) -> None:
    """Graph files loaded by path are modules workers cannot import: send their code along."""
    for name, module in list(sys.modules.items()):
        if name.startswith("flowgraph_user_") and module is not None:
            ray.cloudpickle.register_pickle_by_value(module)


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: Mapping[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


def _reachable(address: str) -> None:
    """A clear error at once for an address where nothing listens (Ray alone waits long)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--ray {address!r} is not an address; give the head's host:port (e.g. "
            "127.0.0.1:6379, as `ray start --head` prints it) or auto"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayUnavailable(
            address,
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})",
            "start it (`ray start --head`) or check the address, or use --ray auto for a local one",
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
