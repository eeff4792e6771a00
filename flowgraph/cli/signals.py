"""Ctrl-C and SIGTERM as cancellation: the running task is cancelled, so a run's ledger records
what was running instead of the process dying mid-write."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["cancelled_by_signals"]

T = TypeVar("T")


async def cancelled_by_signals(work: Awaitable[T]) -> T:
    """Await ``work`` with SIGINT and SIGTERM cancelling the current task."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await work
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
