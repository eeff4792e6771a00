"""Tests for the router: fallback chain, shared breaker, 429 pauses, limits (fake clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from flowgraph.clock import FakeClock
from flowgraph.errors import ConfigError, ModelError, TransientModelError
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.router import ModelLimits, ModelRouter, RouterEvent, Served
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage
from flowgraph.testing.emulator import Emulator, Reply

PRIMARY = "claude-opus-4-7"
BACKUP = "claude-sonnet-4-6"
LAST = "claude-haiku-4-5"


def req(text: str = "hi", node: str = "plan") -> ModelRequest:
    return ModelRequest(PRIMARY, "s", [{"role": "user", "content": text}], max_tokens=32, node=node)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def run_with(emu: Emulator, body: Callable[[AnthropicModel], Awaitable[Any]]) -> Any:
    """Run ``body`` with a real SDK model on the emulator inside one event loop."""

    async def go() -> Any:
        model = AnthropicModel("test-key", base_url=emu.base_url)
        try:
            return await body(model)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_overload_opens_breaker_so_other_callers_skip_the_model(emu: Emulator) -> None:
    emu.fault("overloaded", model=PRIMARY, call=0)
    clock = FakeClock()
    events: list[RouterEvent] = []

    async def body(model: AnthropicModel) -> list[Served]:
        router = ModelRouter(
            model, cooldown=30.0, clock=clock, on_event=events.append, failure_threshold=1
        )
        first = await router.request(req(node="a"), [BACKUP])
        clock.advance(10)  # still inside the cool-down
        second = await asyncio.gather(*(router.request(req(node="b"), [BACKUP]) for _ in range(3)))
        clock.advance(25)  # past the cool-down: the primary is tried again
        third = await router.request(req(node="c"), [BACKUP])
        return [first, *second, third]

    first, *parallel, third = run_with(emu, body)
    assert first.served_by == BACKUP and first.fallbacks_taken == 1
    assert [(a.model, a.outcome, a.reason) for a in first.attempts] == [
        (PRIMARY, "failed", "overloaded (529)"),
        (BACKUP, "served", ""),
    ]
    for served in parallel:
        assert served.served_by == BACKUP
        assert served.attempts[0].outcome == "skipped" and served.attempts[0].model == PRIMARY
    assert third.served_by == PRIMARY and third.fallbacks_taken == 0
    assert emu.calls(PRIMARY) == 2  # the fault and the call after the cool-down, nothing between
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["breaker_opened", "fallback"]
    assert events[0].seconds == 30.0 and events[1].to_model == BACKUP


def test_429_with_retry_after_pauses_the_model_for_other_callers() -> None:
    clock = FakeClock()
    model = FakeModel({PRIMARY: [TransientModelError("slow down", status=429, retry_after=5.0)]})
    router = ModelRouter(model, retries=0, clock=clock)

    async def body() -> tuple[Served, float, Served]:
        first = await router.request(req(), [BACKUP])
        paused = router.paused_for(PRIMARY)
        second = await router.request(req(node="other"))
        return first, paused, second

    first, paused, second = asyncio.run(body())
    assert first.served_by == BACKUP
    assert first.attempts[0].outcome == "rate_limited"
    assert paused == 5.0
    assert second.served_by == PRIMARY
    assert clock.slept[0] == 5.0  # the other caller waited out the shared pause first


def test_429_is_retried_on_the_same_model_honouring_retry_after(emu: Emulator) -> None:
    emu.fault("rate_limit", model=PRIMARY, call=0, retry_after=2.5)
    clock = FakeClock()

    async def body(model: AnthropicModel) -> Served:
        return await ModelRouter(model, clock=clock).request(req(), [BACKUP])

    served = run_with(emu, body)
    assert served.served_by == PRIMARY and served.fallbacks_taken == 0
    assert [a.outcome for a in served.attempts] == ["rate_limited", "served"]
    assert clock.slept == [2.5]


def test_429_retries_back_off_then_fall_back() -> None:
    clock = FakeClock()
    limited: list[Exception] = [TransientModelError("429", status=429) for _ in range(3)]
    router = ModelRouter(FakeModel({PRIMARY: limited}), retries=2, clock=clock)
    served = asyncio.run(router.request(req(), [BACKUP]))
    assert served.served_by == BACKUP
    assert [a.outcome for a in served.attempts] == ["rate_limited"] * 3 + ["served"]
    assert clock.slept == [0.5, 1.0]


def test_fallback_lasts_one_call() -> None:
    clock = FakeClock()
    model = FakeModel({PRIMARY: [TransientModelError("503", status=503)]})
    router = ModelRouter(model, cooldown=0.0, clock=clock)

    async def body() -> tuple[Served, Served]:
        return await router.request(req(), [BACKUP]), await router.request(req(), [BACKUP])

    first, second = asyncio.run(body())
    assert first.served_by == BACKUP and first.attempts[0].reason == "unavailable (503)"
    assert second.served_by == PRIMARY and second.fallbacks_taken == 0


def test_non_transient_error_fails_fast_without_fallback(emu: Emulator) -> None:
    emu.fault("status", model=PRIMARY, status=400, message="bad field")

    async def body(model: AnthropicModel) -> None:
        await ModelRouter(model, clock=FakeClock()).request(req(), [BACKUP, LAST])

    with pytest.raises(ModelError) as caught:
        run_with(emu, body)
    assert not isinstance(caught.value, TransientModelError)
    assert emu.calls(BACKUP) == 0 and emu.calls(LAST) == 0


def test_all_breakers_open_waits_for_the_earliest_to_close() -> None:
    clock = FakeClock()
    model = FakeModel(
        {
            PRIMARY: [TransientModelError("529", status=529)],
            BACKUP: [TransientModelError("529", status=529, retry_after=12.0)],
        }
    )
    router = ModelRouter(model, cooldown=30.0, clock=clock, failure_threshold=1)
    served = asyncio.run(router.request(req(), [BACKUP]))
    # Both breakers opened; the request waited for the earliest (the 12 s retry-after) to close
    # instead of failing, and that half-open model's probe served it.
    assert clock.slept == [12.0]
    assert served.served_by == BACKUP
    assert [a.outcome for a in served.attempts] == ["failed", "failed", "skipped", "served"]


def test_all_breakers_open_past_max_wait_raises() -> None:
    clock = FakeClock()
    model = FakeModel({PRIMARY: [TransientModelError("x", status=None)]})
    router = ModelRouter(model, cooldown=300.0, clock=clock, max_wait=60.0, failure_threshold=1)

    async def body() -> None:
        with pytest.raises(TransientModelError, match="connection error"):
            await router.request(req())
        await router.request(req())

    with pytest.raises(TransientModelError, match="skipped"):
        asyncio.run(body())
    assert clock.slept == []


def test_more_than_three_fallbacks_is_a_config_error() -> None:
    router = ModelRouter(FakeModel({}))
    with pytest.raises(ConfigError, match="at most 3"):
        asyncio.run(router.request(req(), ["a-1", "b-1", "c-1", "d-1"]))


def test_concurrency_cap_observed_exactly() -> None:
    model = FakeModel({}, hold=True)
    router = ModelRouter(model, limits={PRIMARY: ModelLimits(max_concurrent=3)})

    async def body() -> None:
        await asyncio.gather(*(router.request(req(str(i))) for i in range(20)))

    asyncio.run(body())
    assert model.calls == 20
    assert model.peak == 3


def test_request_rate_cap_spreads_requests_over_the_period() -> None:
    router = ModelRouter(FakeModel({}), limits={PRIMARY: ModelLimits(2, period=0.2)})

    async def body() -> None:
        await asyncio.gather(*(router.request(req()) for _ in range(4)))

    started = time.monotonic()
    asyncio.run(body())
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("bad", [{"max_concurrent": 0}, {"period": 0}, {"requests_per_period": 0}])
def test_bad_limits_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ModelLimits(**bad)


def test_billed_tokens_equal_the_usage_the_router_returned(emu: Emulator) -> None:
    emu.script(
        PRIMARY,
        [Reply.text("a" * 40), Reply.advisor("plan", advisor_model=LAST), Reply.text("b" * 9)],
    )
    emu.script(BACKUP, [Reply.tool_use("ls", {"dir": "."})])
    emu.fault("overloaded", model=PRIMARY, call=1)
    emu.fault("drop", model=PRIMARY, call=3)
    clock = FakeClock()

    async def body(model: AnthropicModel) -> list[Served]:
        router = ModelRouter(model, cooldown=5.0, clock=clock)
        results = []
        for i in range(6):
            results.append(await router.request(req(f"turn {i}"), [BACKUP]))
            clock.advance(10)
        return results

    results = run_with(emu, body)
    totals: dict[str, Usage] = {}
    for served in results:
        usage = served.response.usage
        for part in usage.iterations or (usage.to_dict(),):
            model_id = str(part.get("model") or served.served_by)
            totals[model_id] = totals.get(model_id, Usage()) + Usage.from_dict(part)
    assert totals == emu.billed
    assert set(emu.billed) == {PRIMARY, BACKUP, LAST}
    assert [s.served_by for s in results].count(BACKUP) == 2


class FakeModel:
    """A ``Model`` that raises scripted errors per model id, then answers; counts concurrency."""

    def __init__(self, errors: dict[str, list[Exception]], *, hold: bool = False) -> None:
        self.errors = {k: list(v) for k, v in errors.items()}
        self.hold = hold
        self.calls = 0
        self.active = 0
        self.peak = 0

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        pending = self.errors.get(request.model)
        if pending:
            raise pending.pop(0)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            for _ in range(5 if self.hold else 0):
                await asyncio.sleep(0)
        finally:
            self.active -= 1
        return ModelResponse(
            [{"type": "text", "text": "ok"}], "end_turn", request.model, Usage(1, 1)
        )
