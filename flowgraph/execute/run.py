"""Run: the handle of a run in progress — steer its nodes, stream its events, then await its
result."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any

from flowgraph.compile.validation import ValidGraph
from flowgraph.events import Event
from flowgraph.execute.execution import run_graph
from flowgraph.execute.options import RunOptions
from flowgraph.execute.result import RunResult
from flowgraph.ledger.inbox import Inbox, post

__all__ = ["Run"]


class Run:
    """A run started with ``Graph.start``; ``await run`` gives its ``RunResult``.

    Steering reaches a running node at its next model turn (as a new instruction, without
    restarting it) and a node that has not started yet at its first; it is recorded in the
    ledger. From another process, ``flowgraph steer DIR NODE "message"`` does the same.
    """

    def __init__(
        self, valid: ValidGraph, input: Mapping[str, Any] | None, options: RunOptions
    ) -> None:
        self.run_dir = options.run_dir
        self._fan = _Fan(options.on_event)
        options = dataclasses.replace(options, on_event=self._fan)
        self._inbox = Inbox(None, 0)  # in-process messages for a run without a directory
        inbox = None if self.run_dir else self._inbox
        self._task: asyncio.Task[RunResult] = asyncio.get_running_loop().create_task(
            run_graph(valid, input, options, inbox)
        )

    def steer(self, node: str, text: str) -> None:
        """Send ``node`` a new instruction."""
        if self.run_dir is not None:
            post(self.run_dir, "steer", node, text)
        else:
            self._inbox.post("steer", node, text)

    def events(self) -> AsyncIterator[Event]:
        """Every event of the run as it happens, text deltas of streaming calls included:
        ``async for event in run.events(): ...``; the iteration ends with the run. Call it
        before the first ``await`` after ``Graph.start`` to see the run from its start."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._fan.streams.append(queue)
        self._task.add_done_callback(lambda _task: queue.put_nowait(None))
        return _drain(queue)

    def done(self) -> bool:
        """Whether the run has ended."""
        return self._task.done()

    def cancel(self) -> None:
        """Stop the run; what was running is recorded as interrupted."""
        self._task.cancel()

    def __await__(self) -> Generator[Any, None, RunResult]:
        return self._task.__await__()


async def _drain(queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
    while (event := await queue.get()) is not None:
        yield event


class _Fan:
    """The run's ``on_event``: the caller's callback and every ``events()`` stream. It says
    whether anyone listens, so a run nobody watches does not build its events."""

    def __init__(self, callback: Callable[[Event], None] | None) -> None:
        self.callback = callback
        self.streams: list[asyncio.Queue[Event | None]] = []

    @property
    def listening(self) -> bool:
        return self.callback is not None or bool(self.streams)

    def __call__(self, event: Event) -> None:
        if self.callback is not None:
            self.callback(event)
        for queue in self.streams:
            queue.put_nowait(event)
