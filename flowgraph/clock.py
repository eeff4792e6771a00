"""Clocks: the ``Clock`` seam, the real ``SystemClock`` and a deterministic ``FakeClock``.

Everything in flowgraph that waits (back-off, circuit-breaker cool-downs, rate limits) asks a
``Clock`` instead of calling ``time`` and ``asyncio.sleep`` directly, so tests can swap in a
``FakeClock`` whose ``sleep`` advances time at once: a 30-second cool-down test takes milliseconds.
``backoff`` is the one retry-delay formula.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "backoff"]


def backoff(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    """Seconds to wait before retry ``attempt`` (1 for the first): ``base``, doubled for each
    retry after it, at most ``cap``."""
    return float(min(base * 2 ** (attempt - 1), cap))


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time that can also wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (zero or negative returns after yielding to the event loop)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        """Seconds from ``time.monotonic``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait for real with ``asyncio.sleep``."""
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A deterministic clock for tests: ``sleep`` moves time forward instead of waiting.

    Each ``sleep`` still yields once to the event loop, so other tasks run in between, as they
    would with real sleeps; ordering between concurrent sleepers follows the event loop, not the
    requested durations. ``slept`` records every requested sleep for assertions.

    Args:
        start: the initial reading of ``monotonic()``.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without sleeping."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance got {seconds}; time only moves forward")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` (if positive) and yield once to the event loop."""
        self.slept.append(seconds)
        if seconds > 0:
            self._now += seconds
        await asyncio.sleep(0)
