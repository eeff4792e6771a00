"""Faults handled like a careful client: bad gateways, bad networks, long retry-afters, flakiness.

The SDK-level cases run the real SDK against the emulator (or a plain stdlib HTTP server that
misbehaves the way a gateway does); the policy cases drive the router with a fake clock.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flowgraph import Graph, Ledger, Role
from flowgraph.clock import FakeClock
from flowgraph.errors import ModelTimeoutError, TransientModelError
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.router import ModelRouter, describe_error
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage
from flowgraph.testing.emulator import Emulator

MODEL = "claude-sonnet-4-6"
BACKUP = "claude-haiku-4-5"
KEY = "sk-ant-test-secret-0123456789"


def req(model: str = MODEL, node: str = "n") -> ModelRequest:
    return ModelRequest(model, "s", [{"role": "user", "content": "hi"}], max_tokens=16, node=node)


def ask(model: AnthropicModel, request: ModelRequest) -> ModelResponse:
    async def call() -> ModelResponse:
        try:
            return await model.request(request)
        finally:
            await model.aclose()

    return asyncio.run(call())


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


class _PlainJson(BaseHTTPRequestHandler):
    """A gateway that answers every request, streaming or not, with one plain JSON message."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps(
            {"id": "m1", "type": "message", "role": "assistant", "model": MODEL,
             "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
             "usage": {"input_tokens": 1, "output_tokens": 1}}
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_plain_json_answer_to_a_stream_is_a_transient_error_not_an_assertion() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainJson)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(TransientModelError, match="without a stream") as caught:
            ask(AnthropicModel(KEY, base_url=url), req())
        assert url in str(caught.value) and "stream=False" in str(caught.value)
        # The same endpoint works when asked for plain JSON.
        assert ask(AnthropicModel(KEY, base_url=url, stream=False), req()).text == "hi"
    finally:
        server.shutdown()
        server.server_close()


def test_a_timeout_is_called_a_timeout(emu: Emulator) -> None:
    emu.fault("slow", model=MODEL, delay=1.0)
    with pytest.raises(ModelTimeoutError, match="timed out") as caught:
        ask(AnthropicModel(KEY, base_url=emu.base_url, timeout=0.2), req())
    assert describe_error(caught.value) == "timeout"


def test_the_endpoints_own_error_text_reaches_the_error_without_secrets(emu: Emulator) -> None:
    emu.fault("server_error", model=MODEL, message=f"upstream pool exhausted; key={KEY}")
    router = ModelRouter(AnthropicModel(KEY, base_url=emu.base_url), retries_alone=0)

    async def go() -> None:
        await router.request(req())

    with pytest.raises(TransientModelError) as caught:
        asyncio.run(go())
    text = str(caught.value)
    assert "upstream pool exhausted" in text and "server error (500)" in text
    assert KEY not in text and "0123456789" not in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_an_unreachable_endpoint_fails_within_seconds_naming_its_url() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    graph = Graph("g")
    graph.node("a", Role("writer", "Write.", model=MODEL), "hi")
    start = time.monotonic()
    result = graph.run_sync(client=AnthropicModel(KEY, base_url=url))
    elapsed = time.monotonic() - start
    assert not result.ok and elapsed < 10
    error = result.errors["a"]
    assert url in error and "connection" in error and "\n" not in error  # one line


def test_a_huge_retry_after_goes_to_the_fallback_at_once(emu: Emulator) -> None:
    emu.fault("rate_limit", model=MODEL, retry_after=3600)
    clock = FakeClock()

    async def go() -> tuple[str, float]:
        model = AnthropicModel(KEY, base_url=emu.base_url)
        try:
            router = ModelRouter(model, clock=clock)
            served = await router.request(req(), [BACKUP])
            return served.served_by, router.paused_for(MODEL)
        finally:
            await model.aclose()

    served_by, paused = asyncio.run(go())
    assert served_by == BACKUP
    assert clock.slept == []  # nothing waited for
    assert paused == 60.0  # the model rests for the capped time, not an hour


def test_a_node_whose_model_says_retry_after_an_hour_finishes_on_its_fallback(
    emu: Emulator, tmp_path: Path
) -> None:
    # The whole run, on the real clock and the default router policy, through the real SDK.
    emu.fault("rate_limit", model=MODEL, retry_after=3600)
    emu.script(BACKUP, ["from the fallback"])
    graph = Graph("g")
    graph.node("a", Role("writer", "Write.", model=MODEL, fallbacks=[BACKUP]), "hi")
    start = time.monotonic()
    result = graph.run_sync(client=AnthropicModel(KEY, base_url=emu.base_url),
                            run_dir=tmp_path / "run")  # fmt: skip
    elapsed = time.monotonic() - start
    assert result.ok and result["a"] == "from the fallback"
    assert elapsed < 10  # an hour was asked for: not waited, not even once
    [turn] = Ledger.read(tmp_path / "run").nodes["a"].served
    assert turn["model"] == BACKUP and turn["fallbacks"][0]["model"] == MODEL


class _Flaky:
    """A model that fails half its calls with 529 or 500, seeded."""

    def __init__(self, seed: int, only: str | None = None) -> None:
        self.rng = random.Random(seed)
        self.calls = 0
        self.only = only  # the one flaky model (None: every model)

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        await asyncio.sleep(0)
        if self.only in (None, request.model) and self.rng.random() < 0.5:
            status = self.rng.choice([529, 500])
            raise TransientModelError(f"flaky ({status})", status=status, model=request.model)
        return ModelResponse([{"type": "text", "text": "ok"}], "end_turn", request.model, Usage(1))


def test_half_the_calls_failing_without_fallbacks_slows_runs_but_fails_none() -> None:
    for run in range(10):
        clock = FakeClock()
        flaky = _Flaky(seed=run)
        router = ModelRouter(flaky, clock=clock, seed=run)

        async def one_run(router: ModelRouter = router) -> list[str]:
            served = await asyncio.gather(*(router.request(req(node=f"n{i}")) for i in range(20)))
            return [s.served_by for s in served]

        assert asyncio.run(one_run()) == [MODEL] * 20
        assert flaky.calls > 20 and clock.monotonic() > 0  # it retried, and that took time


def test_half_the_calls_failing_with_a_fallback_wait_for_nothing() -> None:
    for run in range(10):
        clock = FakeClock()
        flaky = _Flaky(seed=run, only=MODEL)
        router = ModelRouter(flaky, clock=clock, seed=run)

        async def one_run(router: ModelRouter = router) -> list[str]:
            served = await asyncio.gather(
                *(router.request(req(node=f"n{i}"), [BACKUP]) for i in range(20))
            )
            return [s.served_by for s in served]

        served = asyncio.run(one_run())
        assert len(served) == 20 and set(served) <= {MODEL, BACKUP} and BACKUP in served
        assert clock.slept == []  # on time: every failure went straight to the fallback


def test_the_breaker_half_opens_with_one_probe() -> None:
    clock = FakeClock()
    errors = [TransientModelError("529", status=529) for _ in range(3)]
    calls: list[str] = []

    class Counting:
        async def request(self, request: ModelRequest) -> ModelResponse:
            calls.append(request.model)
            if request.model == MODEL and errors:
                raise errors.pop(0)
            for _ in range(3):
                await asyncio.sleep(0)
            return ModelResponse([], "end_turn", request.model)

    router = ModelRouter(Counting(), clock=clock, cooldown=10.0)

    async def go() -> list[str]:
        for _ in range(2):  # two failures in a row: the breaker stays closed
            assert (await router.request(req(), [BACKUP])).served_by == BACKUP
            assert not router.breaker_open(MODEL)
        await router.request(req(), [BACKUP])  # the third opens it
        assert router.breaker_open(MODEL)
        assert (await router.request(req(), [BACKUP])).attempts[0].outcome == "skipped"
        clock.advance(10.0)
        calls.clear()
        served = await asyncio.gather(*(router.request(req(), [BACKUP]) for _ in range(4)))
        return [s.served_by for s in served]

    served = asyncio.run(go())
    # One probe went to the half-open model; the others used the fallback meanwhile.
    assert calls.count(MODEL) == 1 and served.count(MODEL) == 1 and served.count(BACKUP) == 3
    assert not router.breaker_open(MODEL)


def test_alone_the_breaker_is_waited_for_and_probed_instead_of_failing() -> None:
    clock = FakeClock()
    errors = [TransientModelError("503", status=503) for _ in range(3)]

    class Failing:
        async def request(self, request: ModelRequest) -> ModelResponse:
            if errors:
                raise errors.pop(0)
            return ModelResponse([], "end_turn", request.model)

    router = ModelRouter(Failing(), clock=clock, cooldown=10.0, seed=1)
    served = asyncio.run(router.request(req()))
    assert served.served_by == MODEL
    assert [a.outcome for a in served.attempts] == ["failed"] * 3 + ["served"]
    # two jittered back-offs (0.5 s and 1 s at most), then the 10 s cool-down
    assert len(clock.slept) == 3 and clock.slept[2] == 10.0
    assert 0.25 <= clock.slept[0] <= 0.5 and 0.5 <= clock.slept[1] <= 1.0
