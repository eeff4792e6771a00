"""Run: the handle of a run in progress — steer its nodes, then await its result."""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Mapping
from typing import Any

from flowgraph.compile.validation import ValidGraph
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

    def done(self) -> bool:
        """Whether the run has ended."""
        return self._task.done()

    def cancel(self) -> None:
        """Stop the run; what was running is recorded as interrupted."""
        self._task.cancel()

    def __await__(self) -> Generator[Any, None, RunResult]:
        return self._task.__await__()
