"""Scheduler: runs a DAG of nodes on asyncio, each the moment its last dependency passes.

It knows nodes only by name: what a node does is ``run_node``'s business, what is recorded is the
``Hooks``' business. Concurrency is structured (one ``asyncio.TaskGroup``; no task outlives the
run), capped by ``max_concurrency``; a node is retried with backoff while ``should_retry`` says
so; a failed node's descendants are skipped while independent branches run on; a paused node's
descendants wait (they stay pending for a later run); cancellation
(Ctrl-C, SIGTERM, a caller's timeout) propagates and is never swallowed.

Routes: a node that passed may leave some of its dependents *not taken* (``untaken``: a
route's unchosen branches). A node is not taken when a route left it out, or when none of its
dependencies was taken; a node with at least one taken dependency runs once those passed (a
not-taken dependency counts as done, without an output). Not taken is final: its dependents
are told at once, as for a node that passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from flowgraph import clock
from flowgraph.status import Paused

__all__ = ["Hooks", "NodeTimeout", "Scheduler"]


class Hooks(Protocol):
    """What the scheduler reports; the runner records it in the ledger and emits events."""

    def started(self, name: str, attempt: int) -> None: ...
    def passed(self, name: str, output: Any) -> None: ...
    def failed(self, name: str, error: BaseException) -> None: ...
    def retrying(self, name: str, attempt: int, error: BaseException, delay: float) -> None: ...
    def skipped(self, name: str, because: str) -> None: ...
    def interrupted(self, name: str) -> None: ...
    def paused(self, name: str, pause: Paused) -> None: ...
    def not_taken(self, name: str, upstream: str) -> None: ...


class Scheduler:
    """Runs the nodes in ``todo``; nodes outside it count as already passed.

    Args:
        order: every node name, in topological order.
        after: each node's direct dependencies.
        todo: the nodes to run now.
        run_node: ``await run_node(name, attempt)`` does the node's work and returns its output.
        hooks: told of every state change.
        max_concurrency: nodes running at once; ``None`` for no limit.
        timeouts: seconds per attempt, by node (missing or ``None``: no limit).
        retries: extra attempts allowed, by node.
        should_retry: whether an error is worth another attempt.
        backoff: the first retry's delay in seconds; it doubles each time, capped at 8 s.
        dependents: each node's direct dependents, when the caller has them already.
        untaken: for a node that passed (now or in an earlier run), the dependents it did not
            take (a route's unchosen branches); ``None`` when the graph has no routes.
    """

    def __init__(
        self,
        order: Sequence[str],
        after: Mapping[str, Sequence[str]],
        todo: Collection[str],
        run_node: Callable[[str, int], Awaitable[Any]],
        hooks: Hooks,
        *,
        max_concurrency: int | None = None,
        timeouts: Mapping[str, float | None] | None = None,
        retries: Mapping[str, int] | None = None,
        should_retry: Callable[[str, BaseException], bool] = lambda _n, _e: False,
        backoff: float = 0.5,
        dependents: Mapping[str, Sequence[str]] | None = None,
        untaken: Callable[[str], Collection[str]] | None = None,
    ) -> None:
        self._todo = set(todo)
        self._after = after
        self._untaken_of = untaken
        # Per node to run, how many of its dependencies were not taken (set to all of them
        # when a route left it out); only routed graphs fill it.
        self._untaken: dict[str, int] = {}
        self._run_node = run_node
        self._hooks = hooks
        self._timeouts = timeouts or {}
        self._retries = retries or {}
        self._should_retry = should_retry
        self._backoff = backoff
        self._limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        # How many dependencies each node still waits for; a node leaves this table when it
        # starts or is skipped, so a dependent that is not in it is not ours to start.
        if len(self._todo) == len(order):  # a fresh run: every dependency is still to come
            self._waiting = {n: len(after[n]) for n in order}
        else:
            self._waiting = {n: sum(d in self._todo for d in after[n]) for n in self._todo}
        if dependents is None:
            built: dict[str, list[str]] = {n: [] for n in order}
            for name in order:
                for dep in after[name]:
                    built[dep].append(name)
            dependents = built
        self._dependents = dependents
        if untaken is not None:  # routes that passed in an earlier run keep their choice
            for name in order:
                if name not in self._todo:
                    for child in untaken(name):
                        if child in self._todo:
                            self._untaken[child] = len(after[child])
        self._ready = [n for n in order if n in self._todo and self._waiting[n] == 0]
        for name in self._ready:
            del self._waiting[name]
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        """Run until every node in ``todo`` has passed, failed, been skipped or not taken."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            for name in self._ready:
                if self._untaken and self._is_untaken(name):
                    self._leave_out(name, self._upstream_untaken(name))
                else:
                    group.create_task(self._node(name), name=name)

    async def _node(self, name: str) -> None:
        if self._limit is None and self._timeouts.get(name) is None:
            # The common case in this task's own frame: no cap, no timeout, one attempt
            # that passes. Anything else goes the general way.
            self._hooks.started(name, 1)
            try:
                output = await self._run_node(name, 1)
            except BaseException as error:
                ok = await self._after_error(name, 1, error)
            else:
                self._hooks.passed(name, output)
                ok = True
        else:
            ok = await self._attempts(name)
        if ok is None:  # paused: what depends on it waits for a later run
            return
        if not ok:
            self._skip_below(name)
            return
        if self._untaken_of is not None:
            self._release(name, self._untaken_of(name))
            return
        waiting = self._waiting
        assert self._group is not None
        for child in self._dependents[name]:
            left = waiting.get(child)
            if left is None:
                continue  # not to run now, or skipped
            if left > 1:
                waiting[child] = left - 1
            else:
                del waiting[child]
                self._group.create_task(self._node(child), name=child)

    def _release(self, done: str, untaken: Collection[str] | None) -> None:
        """Tell ``done``'s dependents it is over: ``untaken`` (all of them when ``None``: it
        was not taken itself) were left out. A dependent whose last dependency this was
        starts, or is not taken in turn."""
        stack = [(done, untaken)]
        waiting = self._waiting
        assert self._group is not None
        while stack:
            done, untaken = stack.pop()
            for child in self._dependents[done]:
                left = waiting.get(child)
                if left is None:
                    continue  # not to run now, or skipped
                if untaken is None or child in untaken:
                    routed = untaken is not None  # a route's choice leaves it out at once
                    count = len(self._after[child]) if routed else self._untaken.get(child, 0) + 1
                    self._untaken[child] = count
                if left > 1:
                    waiting[child] = left - 1
                elif self._is_untaken(child):
                    del waiting[child]
                    self._hooks.not_taken(child, done)
                    stack.append((child, None))
                else:
                    del waiting[child]
                    self._group.create_task(self._node(child), name=child)

    def _is_untaken(self, name: str) -> bool:
        return self._untaken.get(name, 0) >= len(self._after[name]) > 0

    def _leave_out(self, name: str, upstream: str) -> None:
        self._hooks.not_taken(name, upstream)
        self._release(name, None)

    def _upstream_untaken(self, name: str) -> str:
        """The route (or not-taken node) upstream of ``name`` that left it out, for the record."""
        assert self._untaken_of is not None
        for dep in self._after[name]:
            if name in self._untaken_of(dep):
                return dep
        return self._after[name][0]

    async def _attempts(self, name: str, attempt: int = 1) -> bool | None:
        try:
            output = await self._attempt(name, attempt)
        except BaseException as error:
            return await self._after_error(name, attempt, error)
        self._hooks.passed(name, output)
        return True

    async def _after_error(self, name: str, attempt: int, error: BaseException) -> bool | None:
        """Record how an attempt ended badly, or retry it (after a backoff) while allowed:
        False when the node failed, None when it paused, else the retries' outcome."""
        if isinstance(error, asyncio.CancelledError):
            self._hooks.interrupted(name)
            raise error
        if isinstance(error, Paused):
            self._hooks.paused(name, error)
            return None
        if not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: never ours to handle
        if attempt <= self._retries.get(name, 0) and self._should_retry(name, error):
            delay = clock.backoff(attempt, self._backoff)
            self._hooks.retrying(name, attempt, error, delay)
            await asyncio.sleep(delay)
            return await self._attempts(name, attempt + 1)
        self._hooks.failed(name, error)
        return False

    async def _attempt(self, name: str, attempt: int) -> Any:
        if self._limit is None:  # no cap: skip the context manager, it is per node per attempt
            return await self._timed(name, attempt)
        async with self._limit:
            return await self._timed(name, attempt)

    async def _timed(self, name: str, attempt: int) -> Any:
        self._hooks.started(name, attempt)
        timeout = self._timeouts.get(name)
        if timeout is None:
            return await self._run_node(name, attempt)
        try:
            async with asyncio.timeout(timeout):
                return await self._run_node(name, attempt)
        except TimeoutError:
            raise NodeTimeout(f"timed out after {timeout:g} s") from None

    def _skip_below(self, failed: str) -> None:
        stack = list(self._dependents[failed])
        while stack:
            child = stack.pop()
            if self._waiting.pop(child, None) is not None:
                self._hooks.skipped(child, f"upstream node {failed!r} did not pass")
                stack.extend(self._dependents[child])


class NodeTimeout(Exception):
    """A node attempt ran past its timeout."""
