"""Tests for flowgraph.models.anthropic: the real SDK against the emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from flowgraph.errors import ModelError, TransientModelError
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.seam import ModelRequest, ModelResponse
from flowgraph.testing.emulator import Emulator, Reply

MODEL = "claude-sonnet-4-6"
KEY = "sk-ant-test-secret-0123456789"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def ask(model: AnthropicModel, request: ModelRequest) -> ModelResponse:
    """One call in its own event loop, closing the connections before the loop ends."""

    async def call() -> ModelResponse:
        try:
            return await model.request(request)
        finally:
            await model.aclose()

    return asyncio.run(call())


def user(text: str) -> ModelRequest:
    return ModelRequest(MODEL, "You are terse.", [{"role": "user", "content": text}], max_tokens=64)


@pytest.mark.parametrize("stream", [True, False])
def test_text_reply_streaming_and_not(emu: Emulator, stream: bool) -> None:
    emu.script(MODEL, [Reply.text("Hello from the emulator, streamed in chunks.")])
    response = ask(AnthropicModel(KEY, base_url=emu.base_url, stream=stream), user("hi"))
    assert response.text == "Hello from the emulator, streamed in chunks."
    assert response.content == [{"type": "text", "text": response.text}]
    assert response.stop_reason == "end_turn" and response.model == MODEL
    assert response.usage.output_tokens == 11 and response.usage.input_tokens > 0
    assert emu.requests[0].stream is stream


@pytest.mark.parametrize("stream", [True, False])
def test_tool_use_round_trip_over_several_turns(emu: Emulator, stream: bool) -> None:
    emu.script(
        MODEL,
        [
            Reply.tool_use("read_file", {"path": "a.py"}, text="Reading."),
            Reply.tool_uses([("grep", {"pattern": "def"}), ("ls", {"dir": "."})]),
            Reply.text("All done."),
        ],
    )
    model = AnthropicModel(KEY, base_url=emu.base_url, stream=stream)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "inspect"}]
    for _ in range(3):
        response = ask(model, ModelRequest(MODEL, "sys", messages, tools=[_tool("read_file")]))
        if response.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": list(response.content)})
        results = [
            {
                "type": "tool_result",
                "tool_use_id": call["id"],
                "content": f"result of {call['name']}",
            }
            for call in response.tool_uses
        ]
        messages.append({"role": "user", "content": results})
    assert response.text == "All done."
    assert [r.status for r in emu.requests] == [200, 200, 200]
    assert len(emu.requests[2].body["messages"]) == 5
    assert emu.requests[0].body["tools"][0]["name"] == "read_file"


def _tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": "a tool", "input_schema": {"type": "object"}}


@pytest.mark.parametrize("stream", [True, False])
def test_advisor_blocks_and_iterations_round_trip_exactly(emu: Emulator, stream: bool) -> None:
    emu.script(MODEL, [Reply.advisor("Use a binary search."), Reply.text("ok")])
    model = AnthropicModel(KEY, base_url=emu.base_url, stream=stream)
    tool = {
        "type": "advisor_20260301",
        "name": "advisor",
        "model": "claude-opus-4-7",
        "max_uses": 2,
    }
    first = ask(
        model,
        ModelRequest(
            MODEL,
            "s",
            [{"role": "user", "content": "go"}],
            tools=[tool],
            betas=["advisor-tool-2026-03-01"],
        ),
    )
    raw = _raw_json_reply(emu, 0)
    assert first.content == raw["content"]
    assert [b["type"] for b in first.content] == [
        "text",
        "server_tool_use",
        "advisor_tool_result",
        "text",
    ]
    assert first.usage.iterations == tuple(raw["usage"]["iterations"])
    assert first.usage.iterations[1]["model"] == "claude-opus-4-7"
    assert emu.requests[0].headers["anthropic-beta"] == "advisor-tool-2026-03-01"
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": list(first.content)},
        {"role": "user", "content": "continue"},
    ]
    ask(model, ModelRequest(MODEL, "s", history, tools=[tool], betas=["advisor-tool-2026-03-01"]))
    assert emu.requests[1].status == 200
    assert emu.requests[1].body["messages"][1]["content"] == raw["content"]


def _raw_json_reply(emu: Emulator, index: int) -> dict[str, Any]:
    """The reply the emulator would send as plain JSON for the same script entry."""
    body = emu.requests[index].body
    replay = Emulator({MODEL: [Reply.advisor("Use a binary search.")]})
    plan = replay.plan(
        "/v1/messages",
        json.dumps({**body, "stream": False}).encode(),
        {"x-api-key": "k", "anthropic-beta": "advisor-tool-2026-03-01"},
    )
    result: dict[str, Any] = plan.body
    return result


def test_fallback_block_and_extra_body_fields_pass_through(emu: Emulator) -> None:
    fallback = {
        "type": "fallback",
        "from": {"model": MODEL},
        "to": {"model": "claude-opus-4-7"},
        "trigger": {"type": "refusal"},
    }
    emu.script(
        MODEL,
        [
            Reply(
                (fallback, {"type": "text", "text": "served"}),
                "end_turn",
                (
                    {
                        "type": "fallback_message",
                        "model": "claude-opus-4-7",
                        "input_tokens": 3,
                        "output_tokens": 2,
                    },
                ),
                "claude-opus-4-7",
            )
        ],
    )
    model = AnthropicModel(KEY, base_url=emu.base_url)
    extra = {"fallbacks": [{"model": "claude-opus-4-7"}], "metadata": {"user_id": "u1"}}
    response = ask(
        model,
        ModelRequest(
            MODEL,
            "s",
            [{"role": "user", "content": "x"}],
            extra=extra,
            betas=["server-side-fallback-2026-07-01"],
        ),
    )
    assert response.content[0] == fallback
    assert response.model == "claude-opus-4-7"
    assert response.usage.iterations[0]["type"] == "fallback_message"
    assert emu.requests[0].body["fallbacks"] == [{"model": "claude-opus-4-7"}]
    assert emu.requests[0].body["metadata"] == {"user_id": "u1"}


TRANSIENT_FAULTS = [
    ({"kind": "rate_limit", "retry_after": 2.5}, True, 429),
    ({"kind": "overloaded"}, True, 529),
    ({"kind": "server_error"}, True, 500),
    ({"kind": "unavailable"}, True, 503),
    ({"kind": "status", "status": 502}, True, 502),
    ({"kind": "status", "status": 504}, True, 504),
    ({"kind": "drop"}, True, None),
    ({"kind": "drop"}, False, None),
    ({"kind": "malformed"}, True, None),
    ({"kind": "malformed"}, False, None),
    ({"kind": "sse_error"}, True, 529),
]


@pytest.mark.parametrize(("fault", "stream", "status"), TRANSIENT_FAULTS)
def test_injected_fault_maps_to_transient_error(
    emu: Emulator, fault: dict[str, Any], stream: bool, status: int | None
) -> None:
    emu.fault(fault.pop("kind"), model=MODEL, call=0, **fault)
    model = AnthropicModel(KEY, base_url=emu.base_url, stream=stream)
    with pytest.raises(TransientModelError) as caught:
        ask(model, user("hi"))
    err = caught.value
    assert err.status == status and err.provider == "anthropic" and err.model == MODEL
    assert "\n" not in str(err)
    if status == 429:
        assert err.retry_after == 2.5
    # The fault was for call 0 only: the same model answers the next call.
    assert ask(model, user("again")).text == "ok"
    assert emu.calls(MODEL) == 2


def test_slow_first_byte_past_timeout_is_transient(emu: Emulator) -> None:
    emu.fault("slow", model=MODEL, call=0, delay=1.0)
    with pytest.raises(TransientModelError, match="timed out"):
        ask(AnthropicModel(KEY, base_url=emu.base_url, timeout=0.2), user("hi"))


@pytest.mark.parametrize("status", [400, 403, 404, 413])
def test_client_errors_are_not_transient(emu: Emulator, status: int) -> None:
    emu.fault("status", model=MODEL, status=status, message="nope")
    with pytest.raises(ModelError) as caught:
        ask(AnthropicModel(KEY, base_url=emu.base_url), user("hi"))
    assert not isinstance(caught.value, TransientModelError)
    assert caught.value.status == status and "\n" not in str(caught.value)


def test_bad_history_is_a_400_model_error(emu: Emulator) -> None:
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ModelError, match="roles must alternate") as caught:
        ask(AnthropicModel(KEY, base_url=emu.base_url), ModelRequest(MODEL, "", bad))
    assert caught.value.status == 400 and not isinstance(caught.value, TransientModelError)


def test_401_message_names_the_env_var() -> None:
    with (
        Emulator(api_key="the-right-key") as emu,
        pytest.raises(ModelError, match="ANTHROPIC_API_KEY") as caught,
    ):
        ask(AnthropicModel("wrong-key", base_url=emu.base_url), user("hi"))
    assert caught.value.status == 401
    assert "wrong-key" not in str(caught.value)


def test_missing_credentials_names_the_env_var(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        ask(AnthropicModel(base_url=emu.base_url), user("hi"))


def test_env_vars_are_read_when_arguments_are_absent(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.base_url)
    assert ask(AnthropicModel(), user("hi")).text == "ok"


def test_prompt_cache_accounting_across_two_requests(emu: Emulator) -> None:
    big = {"type": "text", "text": "x" * 4000, "cache_control": {"type": "ephemeral"}}
    model = AnthropicModel(KEY, base_url=emu.base_url)
    first = [{"role": "user", "content": [big, {"type": "text", "text": "q1"}]}]
    one = ask(model, ModelRequest(MODEL, "", first))
    assert one.usage.cache_creation_input_tokens == 1000
    assert one.usage.cache_read_input_tokens == 0
    assert one.usage.input_tokens == 1
    second = [{"role": "user", "content": [big, {"type": "text", "text": "question two"}]}]
    two = ask(model, ModelRequest(MODEL, "", second))
    assert two.usage.cache_read_input_tokens == 1000
    assert two.usage.cache_creation_input_tokens == 0
    assert two.usage.input_tokens == 3


def test_count_tokens(emu: Emulator) -> None:
    model = AnthropicModel(KEY, base_url=emu.base_url)
    request = ModelRequest(MODEL, "", [{"role": "user", "content": "x" * 40}])
    assert asyncio.run(model.count_tokens(request)) == 10
    assert emu.requests[0].path == "/v1/messages/count_tokens"


def test_api_key_never_in_request_log_or_repr(emu: Emulator) -> None:
    model = AnthropicModel(KEY, base_url=emu.base_url)
    ask(model, user("hi"))
    asyncio.run(model.count_tokens(user("hi")))
    logged = json.dumps([(r.headers, r.body) for r in emu.requests])
    assert KEY not in logged and "[REDACTED]" in logged
    assert KEY not in repr(model) and KEY not in repr(vars(model))


def test_sdk_retries_are_off_by_default(emu: Emulator) -> None:
    emu.fault("overloaded", model=MODEL, call=0)
    with pytest.raises(TransientModelError):
        ask(AnthropicModel(KEY, base_url=emu.base_url), user("hi"))
    assert emu.calls(MODEL) == 1


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = "import sys, flowgraph.models.anthropic; print('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
