"""What runs inside Ray's worker processes: a function step as a task, a role node's tool loop
in an async actor, and the mailbox that carries model responses back to those loops.

A role loop on a worker owns no ledger and no model client. It speaks to the coordinator
through the stream of its actor method (``Message``s, yielded the moment they happen):
``("placed", node_id)`` first, ``("begin", task)`` when the loop starts at turn 1 (the head of
its transcript), then ``("note", delta)`` for each journal delta,
``("call", n, request, fallbacks)`` for each model call, ``("event", event)``, and last
``("done", output, report)`` or ``("error", exception, report)``. The answer to call ``n``
comes back through the ``Mailbox`` actor, under the key ``"<key>:<n>"``, as
``("ok", served, steering)`` (or ``("stop",)``): the steering messages the coordinator took for
the node meanwhile ride with each answer (and those pending at dispatch with the dispatch), and
go into the conversation at the loop's next turn, which journals them as its ``s`` delta. Ray
is imported only inside these functions: this module is importable without it.
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from flowgraph.agent.loop import NodeReport, run_role
from flowgraph.declare.context import Context
from flowgraph.declare.nodes import RoleNode
from flowgraph.errors import NodeError
from flowgraph.events import Event
from flowgraph.models.router import Served
from flowgraph.models.seam import ModelRequest

__all__ = ["REPORT_FIELDS", "Mailbox", "RoleWorker", "here", "run_step_task"]

# The fields of a NodeReport that go back to the coordinator when a loop ends.
REPORT_FIELDS = ("turns", "tool_calls", "served", "model")
Message = tuple[Any, ...]


def here() -> str:
    """The id of the Ray node this process runs on."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


def run_step_task(func: Callable[[Context], Awaitable[Any]], ctx: Context) -> tuple[Any, str]:
    """A function step, run to its end in this worker: its output and where it ran."""
    return asyncio.run(func(ctx)), here()  # type: ignore[arg-type]


class Mailbox:
    """Answers waiting to be taken, by key: the coordinator puts, a worker's loop takes."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._kept: dict[str, Any] = {}

    async def take(self, key: str) -> Any:
        """The answer under ``key``, once it is there."""
        if key in self._kept:
            return self._kept.pop(key)
        future = self._waiting[key] = asyncio.get_running_loop().create_future()
        try:
            return await future
        finally:
            self._waiting.pop(key, None)

    def put(self, key: str, value: Any) -> None:
        """Leave ``value`` under ``key`` (for a loop already waiting, or about to)."""
        future = self._waiting.get(key)
        if future is not None and not future.done():
            future.set_result(value)
        else:
            self._kept[key] = value


class _Stopped(Exception):
    """The coordinator gave up on this loop (its call failed there, or the run stopped)."""


class RoleWorker:
    """An async actor that runs many role loops at once (they wait on models, not CPUs)."""

    async def run(
        self,
        mailbox: Any,
        key: str,
        node: RoleNode,
        ctx: Context,
        replay: list[dict[str, Any]],
        listening: bool,
        primed: Served | None = None,
        steering: Sequence[str] = (),
    ) -> AsyncIterator[Message]:
        """Run ``node``'s tool loop from ``replay``, streaming what happens (see the module).
        ``primed``: the answer to the loop's first call, already paid for by a dispatch whose
        worker was lost before it journaled the turn. ``steering``: messages for the node
        that its loop has not journaled yet."""
        out: asyncio.Queue[Message] = asyncio.Queue()
        report = NodeReport(
            replay=replay,
            note=lambda delta: out.put_nowait(("note", delta)),
            begin=lambda task: out.put_nowait(("begin", task)),
        )
        handed: list[str] = []  # steering messages here, not yet in the conversation
        call = _caller(mailbox, key, out, primed, steering, handed)

        def steer(turn: int) -> list[str]:
            taken = handed[:]
            handed.clear()
            return taken

        def emit(event: Event) -> None:
            if listening:
                out.put_nowait(("event", event))

        async def work() -> None:
            try:
                output = await run_role(node, ctx, call, report, emit, steering=steer)
            except _Stopped:
                out.put_nowait(("stopped",))
            except Exception as exc:
                out.put_nowait(("error", portable(exc), _fields(report)))
            else:
                out.put_nowait(("done", output, _fields(report)))

        yield ("placed", here())
        task = asyncio.create_task(work())
        try:
            while True:
                message = await out.get()
                yield message
                if message[0] in ("done", "error", "stopped"):
                    return
        finally:
            task.cancel()


def _caller(
    mailbox: Any,
    key: str,
    out: asyncio.Queue[Message],
    primed: Served | None,
    steering: Sequence[str],
    handed: list[str],
) -> Callable[..., Awaitable[Served]]:
    """The loop's way to a model: ask the coordinator, wait in the mailbox for the answer
    (and the steering messages that came with it, put in ``handed``)."""
    numbers = itertools.count()
    first = [(primed, list(steering))] if primed is not None else []
    if primed is None:
        handed.extend(steering)

    async def call(request: ModelRequest, fallbacks: Sequence[str]) -> Served:
        if first:  # the replayed conversation asks again what the lost worker was answered
            kept, after = first.pop()
            handed.extend(after)  # the model answered without them: they go in the turn after
            return kept
        n = next(numbers)
        out.put_nowait(("call", n, request, tuple(fallbacks)))
        answer = await mailbox.take.remote(f"{key}:{n}")
        if answer[0] != "ok":
            raise _Stopped()
        handed.extend(answer[2])
        served: Served = answer[1]
        return served

    return call


def _fields(report: NodeReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in REPORT_FIELDS}


def portable(error: Exception) -> Exception:
    """``error`` if it survives pickling, else a ``NodeError`` with its words."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return NodeError(str(error) or type(error).__name__)
    return error
