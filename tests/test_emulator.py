"""Tests for flowgraph.testing.emulator: HTTP behaviour, validation, cache, faults, billing, CLI."""

from __future__ import annotations

import asyncio
import base64
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

from flowgraph.models.seam import Usage
from flowgraph.testing._emulator_advisor import DEFAULT_ADVICE
from flowgraph.testing._emulator_replies import block_tokens, text_tokens
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


@pytest.mark.slow
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
    answer = post(emu, body(u("x")))[1]
    assert answer["content"][0]["text"] == "first"
    assert emu.billed == {MODEL: Usage(1, 2)}
    # The log says which message each request got and what it was billed (none for the fault).
    assert [(r.response_id, r.usage) for r in emu.requests] == [
        (None, None), (answer["id"], answer["usage"])
    ]  # fmt: skip


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


@pytest.mark.slow
def test_script_file_and_cli(tmp_path: Path) -> None:
    script: dict[str, Any] = {
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


# -- the advisor tool (beta advisor-tool-2026-03-01) -----------------------------------------

EXECUTOR = "claude-sonnet-4-6"
ADVISOR = "claude-opus-4-7"
BETA = "advisor-tool-2026-03-01"


def advisor_tool(**extra: Any) -> dict[str, Any]:
    return {"type": "advisor_20260301", "name": "advisor", "model": ADVISOR, **extra}


def ask(
    emu: Emulator,
    messages: list[Any],
    *,
    tool: dict[str, Any] | None = None,
    betas: list[str] | None = None,
    stream: bool = False,
) -> tuple[Any, list[Any]]:
    """One request through the real SDK's beta client; the message and the stream's events."""

    async def main() -> tuple[Any, list[Any]]:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=emu.base_url, max_retries=0)
        params: dict[str, Any] = {
            "model": EXECUTOR,
            "max_tokens": 256,
            "messages": messages,
            "tools": [tool if tool is not None else advisor_tool(max_uses=2)],
            "betas": [BETA] if betas is None else betas,
        }
        try:
            if not stream:
                return await client.beta.messages.create(**params), []
            events = []
            async with client.beta.messages.stream(**params) as streamed:
                async for event in streamed:
                    events.append(event)
                return await streamed.get_final_message(), events
        finally:
            await client.close()

    return asyncio.run(main())


def dumped(message: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [b.model_dump(exclude_none=True) for b in message.content]
    return blocks


def zero_cache(**counts: Any) -> dict[str, Any]:
    return {**counts, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


@pytest.mark.parametrize("stream", [False, True])
def test_consult_runs_the_advisor_script_and_round_trips(emu: Emulator, stream: bool) -> None:
    seen: list[dict[str, Any]] = []

    def advisor(request: dict[str, Any]) -> Reply:
        seen.append(request)
        return Reply.text("Use a binary search.")

    emu.script(EXECUTOR, [Reply.consult("Let me check my plan.", "Following the advice."), "ok"])
    emu.script(ADVISOR, advisor)
    tool = advisor_tool(max_uses=2, max_tokens=300)
    first, events = ask(emu, [u("Find x.")], tool=tool, stream=stream)

    blocks = dumped(first)
    assert [b["type"] for b in blocks] == [
        "text",
        "server_tool_use",
        "advisor_tool_result",
        "text",
    ]
    call, result = blocks[1], blocks[2]
    assert call["name"] == "advisor" and call["input"] == {} and call["id"].startswith("srvtoolu_")
    assert result["tool_use_id"] == call["id"]
    assert result["content"] == {
        "type": "advisor_result",
        "text": "Use a binary search.",
        "stop_reason": "end_turn",
    }
    # The advisor read the executor's transcript so far, as one user message.
    (request,) = seen
    assert request["model"] == ADVISOR and request["max_tokens"] == 300
    transcript = request["messages"][0]["content"]
    assert "Find x." in transcript and "Let me check my plan." in transcript
    assert "Following" not in transcript

    read = block_tokens(request["system"]) + text_tokens(transcript)
    first_in = emu.requests[0].body
    executor_in = sum(block_tokens(t) for t in first_in["tools"]) + text_tokens("Find x.")
    result_block = blocks[2]
    iterations = [
        zero_cache(
            type="message",
            input_tokens=executor_in,
            output_tokens=text_tokens("Let me check my plan.") + block_tokens(call),
        ),
        zero_cache(type="advisor_message", model=ADVISOR, input_tokens=read, output_tokens=5),
        zero_cache(
            type="message",
            input_tokens=block_tokens(result_block),
            output_tokens=text_tokens("Following the advice."),
        ),
    ]
    usage = first.usage.model_dump(exclude_none=True)
    assert usage["iterations"] == iterations
    assert usage["input_tokens"] == iterations[0]["input_tokens"] + iterations[2]["input_tokens"]
    assert usage["output_tokens"] == iterations[0]["output_tokens"] + iterations[2]["output_tokens"]
    assert emu.billed[ADVISOR] == Usage(read, 5)
    assert emu.calls(ADVISOR) == 1

    if stream:  # advisor blocks arrive whole in content_block_start, with no deltas
        starts = {
            e.index: e.content_block.model_dump(exclude_none=True)
            for e in events
            if e.type == "content_block_start"
        }
        assert starts[1] == call and starts[2] == result_block
        deltas = {e.index for e in events if e.type == "content_block_delta"}
        assert deltas == {0, 3}

    # The whole assistant content goes back verbatim on the next request and is accepted.
    second, _ = ask(emu, [u("Find x."), first.to_param(), u("Go on.")], tool=tool, stream=stream)
    assert emu.requests[1].status == 200
    assert emu.requests[1].body["messages"][1]["content"] == blocks
    assert second.content[0].text == "ok"


def test_consult_beyond_max_uses_gets_an_error_and_bills_no_advisor_tokens(emu: Emulator) -> None:
    emu.script(EXECUTOR, [Reply.consults(["a", "b", "c"])])
    emu.script(ADVISOR, ["first advice", "never used"])
    message, _ = ask(emu, [u("x")], tool=advisor_tool(max_uses=1))
    results = [b["content"] for b in dumped(message) if b["type"] == "advisor_tool_result"]
    assert results[0]["text"] == "first advice"
    assert results[1] == {"type": "advisor_tool_result_error", "error_code": "max_uses_exceeded"}
    kinds = [it["type"] for it in message.usage.model_dump()["iterations"]]
    assert kinds == ["message", "advisor_message", "message", "message"]
    assert emu.billed[ADVISOR].output_tokens == text_tokens("first advice")
    assert emu.calls(ADVISOR) == 1


def test_redacted_consult_returns_an_opaque_blob_that_round_trips() -> None:
    with Emulator({EXECUTOR: [Reply.consult("a", "b", redacted=True)]}) as emu:
        emu.script(ADVISOR, ["secret advice"])
        message, _ = ask(emu, [u("x")])
        content = dumped(message)[2]["content"]
        assert content["type"] == "advisor_redacted_result"
        assert "secret" not in content["encrypted_content"]
        base64.b64decode(content["encrypted_content"], validate=True)
        assert emu.billed[ADVISOR].output_tokens == text_tokens("secret advice")
        ask(emu, [u("x"), message.to_param(), u("y")])
        assert emu.requests[-1].status == 200
    with Emulator({EXECUTOR: [Reply.consult("a", "b")]}, redact_advice=True) as emu:
        message, _ = ask(emu, [u("x")])
        assert dumped(message)[2]["content"]["type"] == "advisor_redacted_result"


def test_advisor_fault_becomes_a_result_error_and_the_request_succeeds(emu: Emulator) -> None:
    emu.script(EXECUTOR, [Reply.consult("a", "b"), Reply.consult("c", "d")])
    emu.script(ADVISOR, ["advice"])
    emu.fault("overloaded", model=ADVISOR, call=0)
    message, _ = ask(emu, [u("x")])
    assert emu.requests[0].status == 200
    error = {"type": "advisor_tool_result_error", "error_code": "overloaded"}
    assert dumped(message)[2]["content"] == error
    assert ADVISOR not in emu.billed
    assert [it["type"] for it in message.usage.model_dump()["iterations"]] == ["message"] * 2
    again, _ = ask(emu, [u("x")])  # the fault consumed no advice
    assert dumped(again)[2]["content"]["text"] == "advice"


def test_advisor_max_tokens_truncates_the_advice(emu: Emulator) -> None:
    emu.script(EXECUTOR, [Reply.consult("a", "b")])
    emu.script(ADVISOR, ["x" * 100])
    message, _ = ask(emu, [u("x")], tool=advisor_tool(max_tokens=5))
    content = dumped(message)[2]["content"]
    assert content["stop_reason"] == "max_tokens" and content["text"].startswith("x" * 20 + "\n")
    assert emu.billed[ADVISOR].output_tokens == 5


def test_consult_without_the_advisor_tool_is_its_text_only(emu: Emulator) -> None:
    emu.script(MODEL, [Reply.consult("before", "after"), {"consult": {"before": "only"}}])
    assert [b["text"] for b in post(emu, body(u("x")))[1]["content"]] == ["before", "after"]
    assert [b["text"] for b in post(emu, body(u("x")))[1]["content"]] == ["only"]
    assert emu.calls(ADVISOR) == 0 and ADVISOR not in emu.billed


def test_default_advice_and_the_json_script_forms() -> None:
    script: dict[str, Any] = {
        EXECUTOR: [
            {"consult": {"before": "a", "after": "b", "question": "Which index?"}},
            {"consults": ["a", "b", "c"]},
        ]
    }
    with Emulator(script) as emu:
        message, _ = ask(emu, [u("x")])
        assert dumped(message)[2]["content"]["text"] == DEFAULT_ADVICE
        message, _ = ask(emu, [u("x")])
        assert [b["type"] for b in dumped(message)].count("advisor_tool_result") == 2


SRV = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "advisor", "input": {}}
RESULT = {
    "type": "advisor_tool_result",
    "tool_use_id": "srvtoolu_1",
    "content": {"type": "advisor_result", "text": "t", "stop_reason": "end_turn"},
}
TEXT = {"type": "text", "text": "t"}


@pytest.mark.parametrize(
    "assistant",
    [
        [RESULT, SRV],
        [SRV, TEXT, RESULT],
        [SRV],
        [TEXT, RESULT],
        [SRV, {**RESULT, "tool_use_id": "srvtoolu_2"}],
    ],
    ids=["reversed", "not-adjacent", "no-result", "no-call", "other-id"],
)
def test_out_of_order_advisor_history_is_a_400(emu: Emulator, assistant: list[Any]) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(emu, [u("x"), a(assistant), u("y")])
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "advisor_tool_result" in caught.value.message


def test_advisor_result_in_a_user_message_is_a_400(emu: Emulator) -> None:
    status, data = post(emu, body(u([RESULT]), tools=[advisor_tool()]))
    assert status == 400 and "same assistant message" in data["error"]["message"]


def test_advisor_history_is_accepted_and_needs_no_tool_result(emu: Emulator) -> None:
    history = [u("x"), a([TEXT, SRV, RESULT, TEXT]), u("y")]
    ask(emu, history)
    assert emu.requests[0].status == 200


def test_advisor_tool_without_the_beta_header_is_a_400(emu: Emulator) -> None:
    with pytest.raises(anthropic.BadRequestError, match=BETA):
        ask(emu, [u("x")], betas=[])
    assert emu.requests[0].status == 400


def test_emulator_without_advisor_support_rejects_the_tool_type() -> None:
    expected = "tools.0: unknown tool type 'advisor_20260301'"
    with Emulator(advisor_tool=False) as emu:
        with pytest.raises(anthropic.BadRequestError, match=expected):
            ask(emu, [u("x")])
        emu.advisor_tool = True
        ask(emu, [u("x")])
        emu.advisor_tool = False
        status, data = post(emu, body(u("x"), tools=[advisor_tool()]))
        assert (status, data["error"]["type"]) == (400, "invalid_request_error")
        assert data["error"]["message"] == expected
        assert post(emu, body(u("x")))[0] == 200


def test_advisor_blocks_count_and_cache_like_any_other_block(emu: Emulator) -> None:
    cached = {**RESULT, "cache_control": {"type": "ephemeral"}}
    history = body(u("x"), a([SRV, cached]), u("y"))
    expected = text_tokens("x") + block_tokens(SRV) + block_tokens(RESULT) + text_tokens("y")
    count = post(emu, history, path="/v1/messages/count_tokens")[1]
    assert count == {"input_tokens": expected}
    assert post(emu, history)[1]["usage"]["cache_creation_input_tokens"] == expected - 1
    assert post(emu, history)[1]["usage"]["cache_read_input_tokens"] == expected - 1
