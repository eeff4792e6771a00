"""A run sets the heap it starts on aside from the garbage collector, and gives it back."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from flowgraph import Context, Graph


class Cyclic:
    """An object only the cyclic collector can free: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def thawed_heap() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "an earlier test left the heap frozen"
    yield
    gc.unfreeze()


def test_a_run_freezes_the_heap_it_started_on_and_gives_it_back_when_it_ends() -> None:
    before: Cyclic | None = Cyclic()
    dead_before = weakref.ref(before)
    seen: dict[str, Any] = {}

    async def work(ctx: Context) -> None:
        nonlocal before
        seen["frozen"] = gc.get_freeze_count()
        before = None  # garbage now, but made before the run: it waits for the run's end
        gc.collect()
        seen["old cycle freed during the run"] = dead_before() is None
        made = Cyclic()  # the run's own garbage is collected as usual
        dead_made = weakref.ref(made)
        del made
        gc.collect()
        seen["own cycle freed during the run"] = dead_made() is None

    g = Graph("heap")
    g.node("work", work)
    assert g.run_sync().ok
    assert seen["frozen"] > 1000  # the interpreter, pytest and flowgraph's imports
    assert seen["own cycle freed during the run"] is True
    assert seen["old cycle freed during the run"] is False
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert dead_before() is None  # nothing leaks: freed at the first collection after


def test_flowgraph_gc_freeze_0_leaves_the_collector_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWGRAPH_GC_FREEZE", "0")
    seen: list[int] = []

    async def work(ctx: Context) -> None:
        seen.append(gc.get_freeze_count())

    g = Graph("thawed")
    g.node("work", work)
    assert g.run_sync().ok
    assert seen == [0]


def test_a_heap_the_process_froze_itself_is_left_frozen() -> None:
    gc.freeze()  # as a pre-fork server does
    later = Cyclic()  # made after the process's freeze, before the run
    seen: list[bool] = []

    async def work(ctx: Context) -> None:
        seen.append(any(o is later for o in gc.get_objects()))  # the permanent one is not listed

    g = Graph("prefrozen")
    g.node("work", work)
    assert g.run_sync().ok
    assert seen == [True]  # the run froze nothing more
    assert gc.get_freeze_count() > 1000  # and gave back nothing it had not frozen


def test_runs_going_on_at_once_share_one_freeze_until_the_last_ends() -> None:
    seen: dict[str, int] = {}
    short_done = asyncio.Event()

    async def short(ctx: Context) -> None:
        seen["short"] = gc.get_freeze_count()

    async def long(ctx: Context) -> None:
        await asyncio.wait_for(short_done.wait(), timeout=10)
        seen["long, after the short run ended"] = gc.get_freeze_count()

    first, second = Graph("short"), Graph("long")
    first.node("short", short)
    second.node("long", long)

    async def both() -> None:
        async def short_run() -> None:
            assert (await first.run()).ok
            short_done.set()

        results = await asyncio.gather(short_run(), second.run())
        assert results[1].ok

    asyncio.run(both())
    assert seen["short"] > 0
    assert seen["long, after the short run ended"] > 0
    assert gc.get_freeze_count() == 0


def test_a_cancelled_run_gives_the_heap_back() -> None:
    async def slow(ctx: Context) -> None:
        await asyncio.sleep(10)

    g = Graph("cancelled")
    g.node("slow", slow)

    async def cancel_midway() -> None:
        run = asyncio.create_task(g.run())
        await asyncio.sleep(0.2)
        assert gc.get_freeze_count() > 0
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(cancel_midway())
    assert gc.get_freeze_count() == 0
