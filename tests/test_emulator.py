"""Tests for flowgraph.testing.emulator: HTTP behaviour, validation, cache, faults, billing, CLI."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from flowgraph.model import Usage
from flowgraph.testing.emulator import Emulator, Fault, Reply

MODEL = "claude-haiku-4-5"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def post(
    emu: Emulator, body: Any, path: str = "/v1/messages", key: str = "k"
) -> tuple[int, dict[str, Any]]:
    host, port = emu.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", path, json.dumps(body), {"x-api-key": key, "content-type": "json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 16, "messages": list(messages), **extra}


def u(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def a(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"max_tokens": 5, "messages": [u("x")]}, "model: Field required"),
        ({"model": MODEL, "messages": [u("x")]}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages"),
        (body(a("x")), "first message"),
        (body(u("x"), u("y")), "alternate"),
        (
            body(
                u("x"),
                a([{"type": "text", "text": "t"}]),
                u([{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]),
            ),
            "unexpected `tool_use_id`",
        ),
        (
            body(u("x"), a([{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]), u("no")),
            "without `tool_result`",
        ),
    ],
)
def test_invalid_requests_get_a_real_400_body(
    emu: Emulator, request_body: dict[str, Any], message: str
) -> None:
    status, data = post(emu, request_body)
    assert status == 400
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert message in data["error"]["message"]
    assert emu.requests[-1].status == 400


def test_tool_result_answering_previous_tool_use_is_accepted(emu: Emulator) -> None:
    history = body(
        u("x"),
        a([{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]),
        u([{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]),
    )
    assert post(emu, history)[0] == 200


def test_unknown_path_is_404_and_wrong_key_is_401() -> None:
    with Emulator(api_key="right") as emu:
        assert post(emu, body(u("x")), key="wrong")[0] == 401
        status, data = post(emu, body(u("x")), path="/v1/nope", key="right")
        assert status == 404 and data["error"]["type"] == "not_found_error"


def test_connections_are_kept_alive(emu: Emulator) -> None:
    host, port = emu.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    sockets = []
    for _ in range(3):
        conn.request("POST", "/v1/messages", json.dumps(body(u("x"))), {"x-api-key": "k"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        sockets.append(conn.sock)
    conn.close()
    assert sockets[0] is sockets[1] is sockets[2]


def test_sustains_200_concurrent_streaming_clients(emu: Emulator) -> None:
    emu.latency = 0.05

    async def main() -> list[str]:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=emu.base_url, max_retries=0)

        async def one(i: int) -> str:
            params: Any = {"model": MODEL, "max_tokens": 8, "messages": [u(f"q{i}")]}
            async with client.beta.messages.stream(**params) as stream:
                message = await stream.get_final_message()
            return str(message.content[0].text)  # type: ignore[union-attr]

        try:
            return await asyncio.gather(*(one(i) for i in range(200)))
        finally:
            await client.close()

    assert asyncio.run(main()) == ["ok"] * 200
    assert len(emu.requests) == 200


def test_script_function_sees_the_request_body(emu: Emulator) -> None:
    emu.script(MODEL, lambda b: Reply.text(f"you said {b['messages'][-1]['content']}"))
    assert post(emu, body(u("ping")))[1]["content"][0]["text"] == "you said ping"


def test_sequence_script_then_default_ok(emu: Emulator) -> None:
    emu.script(MODEL, ["one", {"text": "two", "stop_reason": "max_tokens"}])
    replies = [post(emu, body(u("x")))[1] for _ in range(3)]
    assert [r["content"][0]["text"] for r in replies] == ["one", "two", "ok"]
    assert replies[1]["stop_reason"] == "max_tokens"


def test_reply_helpers_build_the_right_shapes(emu: Emulator) -> None:
    emu.script(MODEL, [Reply.refusal(), Reply.tool_uses([("a", {}), ("b", {"x": 1})])])
    refusal = post(emu, body(u("x")))[1]
    assert refusal["stop_reason"] == "refusal"
    tools = post(emu, body(u("x")))[1]
    assert tools["stop_reason"] == "tool_use"
    ids = [b["id"] for b in tools["content"]]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)


def test_token_counts_are_deterministic(emu: Emulator) -> None:
    emu.script(MODEL, ["x" * 41])
    data = post(emu, body(u("y" * 17)))[1]
    assert data["usage"]["input_tokens"] == 5
    assert data["usage"]["output_tokens"] == 11
    assert post(emu, body(u("y" * 17)), path="/v1/messages/count_tokens")[1] == {"input_tokens": 5}


def test_cache_breakpoint_writes_then_reads_and_expires_after_ttl() -> None:
    now = [0.0]
    cached = {"type": "text", "text": "p" * 400, "cache_control": {"type": "ephemeral"}}
    hour = {"type": "text", "text": "h" * 400, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    with Emulator(now=lambda: now[0]) as emu:

        def usage(block: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = post(emu, body(u([block, {"type": "text", "text": "q"}])))[1]
            usage: dict[str, Any] = result["usage"]
            return usage

        assert usage(cached)["cache_creation_input_tokens"] == 100
        now[0] = 200
        assert usage(cached)["cache_read_input_tokens"] == 100  # read refreshes the TTL
        now[0] = 450
        assert usage(cached)["cache_read_input_tokens"] == 100
        now[0] = 800
        again = usage(cached)
        assert again["cache_creation_input_tokens"] == 100 and again["input_tokens"] == 1
        assert usage(hour)["cache_creation_input_tokens"] == 100
        now[0] = 800 + 1800
        assert usage(hour)["cache_read_input_tokens"] == 100


def test_cache_is_per_model_and_follows_the_longest_prefix(emu: Emulator) -> None:
    sys_block = {"type": "text", "text": "s" * 80, "cache_control": {"type": "ephemeral"}}
    first = body(u("q" * 8), system=[sys_block])
    assert post(emu, first)[1]["usage"]["cache_creation_input_tokens"] == 20
    longer = body(
        u([{"type": "text", "text": "m" * 40, "cache_control": {"type": "ephemeral"}}]),
        system=[sys_block],
    )
    usage = post(emu, longer)[1]["usage"]
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (20, 10)
    other = post(emu, {**first, "model": "other-model"})[1]["usage"]
    assert other["cache_creation_input_tokens"] == 20 and other["cache_read_input_tokens"] == 0


def test_fault_applies_only_to_its_model_and_call_index(emu: Emulator) -> None:
    emu.fault("rate_limit", model=MODEL, call=1, retry_after=1.5)
    assert post(emu, body(u("x")))[0] == 200
    assert post(emu, {**body(u("x")), "model": "other"})[0] == 200
    host, port = emu.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/v1/messages", json.dumps(body(u("x"))), {"x-api-key": "k"})
    response = conn.getresponse()
    data = json.loads(response.read())
    assert response.status == 429 and data["error"]["type"] == "rate_limit_error"
    assert response.getheader("retry-after-ms") == "1500"
    assert response.getheader("retry-after") == "2"
    assert post(emu, body(u("x")))[0] == 200
    assert [r.fault for r in emu.requests] == [None, None, "rate_limit", None]


def test_failed_fault_bills_nothing_and_keeps_the_scripted_reply(emu: Emulator) -> None:
    emu.script(MODEL, ["first"])
    emu.fault("overloaded", model=MODEL, call=0)
    assert post(emu, body(u("x")))[0] == 529
    assert emu.billed == {}
    assert post(emu, body(u("x")))[1]["content"][0]["text"] == "first"
    assert emu.billed == {MODEL: Usage(1, 2)}


def test_latency_and_slow_fault_delay_the_first_byte(emu: Emulator) -> None:
    emu.latency = 0.1
    emu.fault("slow", model=MODEL, call=0, delay=0.2)
    started = time.monotonic()
    assert post(emu, body(u("x")))[0] == 200
    assert time.monotonic() - started >= 0.3


def test_request_log_redacts_auth_headers(emu: Emulator) -> None:
    post(emu, body(u("x")), key="sk-very-secret")
    assert emu.requests[0].headers["x-api-key"] == "[REDACTED]"
    assert "sk-very-secret" not in repr(emu.requests)


def test_script_file_and_cli(tmp_path: Path) -> None:
    script = {
        "models": {
            MODEL: [
                {"tool_use": {"name": "ls", "input": {}}, "text": "Listing."},
                {"content": [{"type": "text", "text": "raw"}], "stop_reason": "end_turn"},
            ]
        },
        "faults": [{"kind": "overloaded", "model": "busy", "call": 0}],
    }
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    with Emulator.from_file(path) as emu:
        first = post(emu, body(u("x")))[1]
        assert first["stop_reason"] == "tool_use" and first["content"][0]["text"] == "Listing."
        assert post(emu, {**body(u("x")), "model": "busy"})[0] == 529
    process = subprocess.Popen(
        [sys.executable, "-m", "flowgraph.testing.emulator", "--script", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/v1/messages", json.dumps(body(u("x"))), {"x-api-key": "k"})
        assert json.loads(conn.getresponse().read())["stop_reason"] == "tool_use"
        conn.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_bad_script_entries_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="not a reply"):
        Emulator({MODEL: [{"bogus": 1}]})
    with pytest.raises(ValueError, match="needs kind"):
        Fault.from_json({"model": MODEL})
