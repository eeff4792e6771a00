"""The scheduler: parallelism, concurrency cap, failure isolation, retries, timeouts, cancel."""

from __future__ import annotations

import asyncio

import pytest

from flowgraph import Context, Graph, NodeFinished


def test_fifty_independent_nodes_run_concurrently() -> None:
    running = 0
    peak = 0
    all_in = asyncio.Event()

    async def work(ctx: Context) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 50:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), timeout=5)
        running -= 1
        return 1

    g = Graph("wide")
    for i in range(50):
        g.node(f"n{i}", work)
    result = g.run_sync()
    assert result.ok
    assert peak == 50


def test_max_concurrency_caps_the_observed_peak_exactly() -> None:
    running = 0
    peak = 0

    async def work(ctx: Context) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    g = Graph("capped", max_concurrency=8)
    for i in range(50):
        g.node(f"n{i}", work)
    assert g.run_sync().ok
    assert peak == 8


def test_a_node_starts_the_moment_its_last_dependency_passes() -> None:
    log: list[str] = []

    async def slow(ctx: Context) -> None:
        await asyncio.sleep(0.05)
        log.append(ctx.node)

    async def fast(ctx: Context) -> None:
        log.append(ctx.node)

    g = Graph("eager")
    g.node("slow", slow)
    g.node("fast", fast)
    g.node("after_fast", fast, after=["fast"])
    g.node("join", fast, after=["slow", "after_fast"])
    assert g.run_sync().ok
    # after_fast does not wait for the unrelated slow branch
    assert log == ["fast", "after_fast", "slow", "join"]


def test_failed_node_skips_descendants_while_independent_branches_finish() -> None:
    async def boom(ctx: Context) -> None:
        raise RuntimeError("tests failed")

    async def ok(ctx: Context) -> str:
        await asyncio.sleep(0.01)
        return ctx.node

    g = Graph("partial")
    g.node("bad", boom)
    g.node("child", ok, after=["bad"])
    g.node("grandchild", ok, after=["child"])
    g.node("other", ok)
    g.node("other_child", ok, after=["other"])
    result = g.run_sync()
    assert result.status == "failed"
    assert result.statuses == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "other": "passed",
        "other_child": "passed",
    }
    assert result.errors["bad"] == "tests failed"
    assert "did not pass" in result.errors["child"]


def test_step_retries_with_backoff_then_passes() -> None:
    attempts = 0

    async def flaky(ctx: Context) -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("flaky")
        return "ok"

    g = Graph("retry")
    g.node("flaky", flaky, retries=2)
    result = g.run_sync(retry_backoff=0.001)
    assert result.ok and attempts == 3


def test_step_without_retries_fails_on_first_error() -> None:
    attempts = 0

    async def flaky(ctx: Context) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("down")

    g = Graph("noretry")
    g.node("flaky", flaky)
    assert g.run_sync().status == "failed"
    assert attempts == 1


def test_node_timeout_fails_the_node_with_a_clear_error() -> None:
    async def hang(ctx: Context) -> None:
        await asyncio.sleep(10)

    g = Graph("timeout")
    g.node("hang", hang, timeout=0.05)
    result = g.run_sync()
    assert result.statuses["hang"] == "failed"
    assert result.errors["hang"] == "timed out after 0.05 s"


def test_cancelling_a_run_propagates_and_records_running_nodes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    started = asyncio.Event()

    async def hang(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(10)

    async def main() -> None:
        g = Graph("cancel")
        g.node("hang", hang)
        task = asyncio.create_task(g.run(run_dir=tmp_path / "run"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    from flowgraph import Ledger

    doc = Ledger.read(tmp_path / "run")
    assert doc.status == "interrupted"
    assert doc.nodes["hang"].status == "interrupted"
    assert "flowgraph resume" in doc.next_step


def test_events_report_every_node_outcome() -> None:
    seen: list[tuple[str, str]] = []

    async def ok(ctx: Context) -> None:
        return None

    g = Graph("events")
    g.node("a", ok)
    g.node("b", ok, after=["a"])
    g.run_sync(
        on_event=lambda e: seen.append((e.node, e.status)) if isinstance(e, NodeFinished) else None
    )
    assert seen == [("a", "passed"), ("b", "passed")]
