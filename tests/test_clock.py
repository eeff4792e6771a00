"""Tests for flowgraph.clock: the fake clock advances instantly and deterministically."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowgraph.clock import Clock, FakeClock, SystemClock


def test_fake_clock_sleep_advances_time_instantly() -> None:
    clock = FakeClock(start=100.0)
    started = time.monotonic()
    asyncio.run(clock.sleep(3600))
    assert time.monotonic() - started < 1.0
    assert clock.monotonic() == 3700.0
    assert clock.slept == [3600]


def test_fake_clock_advance_rejects_going_back() -> None:
    clock = FakeClock()
    clock.advance(2.5)
    assert clock.monotonic() == 2.5
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SystemClock(), Clock)
    clock = SystemClock()
    before = clock.monotonic()
    asyncio.run(clock.sleep(0.01))
    assert clock.monotonic() >= before + 0.005
