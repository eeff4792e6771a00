"""flowgraph behind a real third-party gateway: the LiteLLM proxy (``litellm[proxy]``) on 127.0.0.1.

One proxy per test session (it takes seconds to start), in front of two upstreams:

- ``anthropic/...`` models forwarded natively to flowgraph's emulator;
- ``openai/gpt-5.5``, translated to chat/completions
  (``use_chat_completions_url_for_anthropic_messages``) and sent to a small OpenAI-style fake
  upstream defined here, which bills fixed token counts and records what it received.

LiteLLM's own retries are off (``num_retries: 0``) and it reads its local price map
(``LITELLM_LOCAL_MODEL_COST_MAP=True``), so nothing reaches beyond the loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flowgraph import Graph, Ledger, Role, tool
from flowgraph.declare.advisor import Advisor
from flowgraph.models.endpoints import Endpoint, Endpoints
from flowgraph.models.seam import Usage
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing.emulator import Emulator, Reply

pytestmark = pytest.mark.slow

SONNET = "claude-sonnet-4-6"
HAIKU = "claude-haiku-4-5"
GPT = "openai/gpt-5.5"
MASTER_KEY = "sk-flowgraph-litellm-test"
KEY_ENV = "FLOWGRAPH_TEST_GATEWAY_KEY"
PROMPT_TOKENS, COMPLETION_TOKENS = 20, 7
GPT_PRICE = {"input": 1.25, "output": 10.0}  # USD per million tokens, flowgraph's own table

LITELLM = shutil.which("litellm", path=str(Path(sys.executable).parent)) or shutil.which("litellm")
if LITELLM is None:
    pytest.skip(
        "the LiteLLM proxy is not installed; `pip install -e '.[test]'` installs litellm[proxy]",
        allow_module_level=True,
    )


@dataclass
class Upstream:
    """The OpenAI-style fake: answers chat/completions with the next scripted text."""

    replies: list[str | dict[str, Any]] = field(default_factory=list)  # dict: a tool call
    received: list[dict[str, Any]] = field(default_factory=list)
    answer_as: str = ""  # the model name it puts in its answers ("" : the one asked)

    def reply(self, body: dict[str, Any]) -> tuple[str | dict[str, Any], dict[str, int]]:
        self.received.append(body)
        text = self.replies.pop(0) if self.replies else "ok"
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}  # fmt: skip
        return text, usage


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            text, usage = upstream.reply(body)
            model = upstream.answer_as or body["model"]
            base = {"id": "chatcmpl-1", "created": 0, "model": model}
            said: dict[str, Any] = {"role": "assistant", "content": text}
            finish = "stop"
            if isinstance(text, dict):  # a tool call
                call = {"id": text.get("id", "call_1"), "type": "function", "function": {
                    "name": text["tool"], "arguments": json.dumps(text["args"])}}  # fmt: skip
                said, finish = {"role": "assistant", "content": None,
                                "tool_calls": [call]}, "tool_calls"  # fmt: skip
            if body.get("stream"):
                self._send(_chunks(base, said, finish, usage), "text/event-stream")
            else:
                message = {**base, "object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "message": said, "finish_reason": finish}]}  # fmt: skip
                self._send(json.dumps(message).encode(), "application/json")

        def _send(self, data: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _chunks(base: dict[str, Any], said: dict[str, Any], finish: str, usage: Any) -> bytes:
    """A chat/completions stream of ``said``: its text or its tool call (name first, then the
    arguments in two pieces, as OpenAI streams them), the finish reason, then the usage."""
    first: dict[str, Any] = {"role": "assistant", "content": said["content"]}
    deltas = [first]
    if "tool_calls" in said:
        [call] = said["tool_calls"]
        args = call["function"]["arguments"]
        opening = {**call, "index": 0, "function": {"name": call["function"]["name"],
                                                     "arguments": ""}}  # fmt: skip
        first["tool_calls"] = [opening]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
                   for part in (args[: len(args) // 2], args[len(args) // 2 :])]  # fmt: skip
    chunks = [
        {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": d, "finish_reason": None}],
        }
        for d in deltas
    ]
    chunks += [
        {**base, "object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage},
    ]  # fmt: skip
    return ("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    url: str
    emulator: Emulator
    upstream: Upstream

    def endpoints(self, *, stream: bool = True) -> Endpoints:
        """The gateway as a named endpoint ``gw``: a non-Anthropic URL, so ``auto`` there means
        no native advisor and no server fallbacks."""
        os.environ[KEY_ENV] = MASTER_KEY
        return Endpoints({"gw": Endpoint(self.url, api_key_env=KEY_ENV, stream=stream)})


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    upstream = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emulator = Emulator().start()
    port = _free_port()
    config = tmp_path_factory.mktemp("litellm") / "config.yaml"
    routes = [
        (SONNET, f"anthropic/{SONNET}", emulator.base_url),
        (HAIKU, f"anthropic/{HAIKU}", emulator.base_url),
        (GPT, GPT, f"http://127.0.0.1:{server.server_port}/v1"),
    ]
    lines = ["model_list:"]
    for name, model, base in routes:
        lines += [f"  - model_name: {name}", "    litellm_params:", f"      model: {model}",
                  f"      api_base: {base}", "      api_key: upstream-key"]  # fmt: skip
    lines += ["router_settings:", "  num_retries: 0", "litellm_settings:",
              "  use_chat_completions_url_for_anthropic_messages: true"]  # fmt: skip
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": MASTER_KEY}
    log = (config.parent / "litellm.log").open("w")
    assert LITELLM is not None
    proc = subprocess.Popen(
        [LITELLM, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health/liveliness", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    pytest.fail("LiteLLM proxy did not start:\n" + (config.parent / "litellm.log")
                                .read_text()[-2000:])  # fmt: skip
                time.sleep(0.25)
        yield Gateway(url, emulator, upstream)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        emulator.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def gw(gateway: Gateway) -> Gateway:
    gateway.emulator.clear_faults()
    gateway.upstream.replies.clear()
    gateway.upstream.received.clear()
    gateway.upstream.answer_as = ""
    return gateway


@pytest.mark.parametrize("stream", [True, False])
def test_forwarded_route_text_and_cost_equal_what_the_upstream_billed(
    gw: Gateway, tmp_path: Path, stream: bool
) -> None:
    gw.emulator.script(SONNET, ["Hello through LiteLLM."])
    before = gw.emulator.billed.get(SONNET)
    g = Graph("g", client=gw.endpoints(stream=stream))
    g.node("w", Role("w", "Be terse.", model=SONNET, endpoint="gw"), "say hi")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["w"] == "Hello through LiteLLM."
    record = Ledger.read(tmp_path / "run").nodes["w"]
    billed = gw.emulator.billed[SONNET]
    spent = {k: billed.to_dict()[k] - (before.to_dict()[k] if before else 0)
             for k in billed.to_dict()}  # fmt: skip
    assert record.usage == spent
    assert record.served[0]["endpoint"] == "gw" and record.served[0]["model"] == f"gw:{SONNET}"
    assert record.cost_usd and record.cost_usd > 0


@pytest.mark.parametrize("stream", [True, False])
def test_translating_route_records_and_prices_what_the_upstream_billed(
    gw: Gateway, tmp_path: Path, stream: bool
) -> None:
    gw.upstream.replies.append("A reviewer from another lab.")
    pricing = DEFAULT_PRICING.with_prices({f"gw:{GPT}": GPT_PRICE})
    g = Graph("g", client=gw.endpoints(stream=stream), pricing=pricing)
    g.node("r", Role("r", "Review.", model=GPT, endpoint="gw"), "review this")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["r"] == "A reviewer from another lab."
    record = Ledger.read(tmp_path / "run").nodes["r"]
    assert record.usage["input_tokens"] == PROMPT_TOKENS
    assert record.usage["output_tokens"] == COMPLETION_TOKENS
    expected = (PROMPT_TOKENS * 1.25 + COMPLETION_TOKENS * 10.0) / 1_000_000
    assert record.cost_usd == pytest.approx(expected)
    assert gw.upstream.received[0]["model"] == "gpt-5.5"


def test_a_reply_from_another_model_is_recorded_and_priced_as_that_model(
    gw: Gateway, tmp_path: Path
) -> None:
    # An endpoint wrongly trusted with server fallbacks: LiteLLM reads the `fallbacks` field as
    # its own list, and when sonnet fails a haiku answers the sonnet request.
    os.environ[KEY_ENV] = MASTER_KEY
    trusting = Endpoints({"gw": Endpoint(gw.url, api_key_env=KEY_ENV, stream=False,
                                         server_fallbacks=True)})  # fmt: skip
    gw.emulator.fault("server_error", model=SONNET)
    gw.emulator.script(HAIKU, ["haiku answered"])
    before = gw.emulator.billed.get(HAIKU)
    events: list[Any] = []
    g = Graph("g", client=trusting)
    g.node("w", Role("w", "x", model=SONNET, endpoint="gw", server_fallbacks=[HAIKU]), "t")
    result = g.run_sync(run_dir=tmp_path / "run", on_event=events.append)
    assert result.ok, result.errors
    record = Ledger.read(tmp_path / "run").nodes["w"]
    [turn] = record.served
    assert turn["model"] == f"gw:{HAIKU}" and turn["requested"] == f"gw:{SONNET}"
    billed = gw.emulator.billed[HAIKU]
    spent = {k: billed.to_dict()[k] - (before.to_dict()[k] if before else 0)
             for k in billed.to_dict()}  # fmt: skip
    assert record.usage == spent
    assert record.cost_usd == pytest.approx(
        DEFAULT_PRICING.price(Usage(**spent), HAIKU).usd  # priced as haiku, not sonnet
    )
    assert any(type(e).__name__ == "ModelSubstituted" for e in events)


def test_server_fallbacks_are_not_sent_to_the_gateway(gw: Gateway, tmp_path: Path) -> None:
    gw.emulator.script(SONNET, ["sonnet answered"])
    g = Graph("g", client=gw.endpoints(stream=False))
    role = Role("w", "x", model=SONNET, endpoint="gw", server_fallbacks=[HAIKU])
    g.node("w", role, "t")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result["w"] == "sonnet answered"
    sent = [r for r in gw.emulator.requests if r.model == SONNET][-1]
    assert "fallbacks" not in sent.body
    assert Ledger.read(tmp_path / "run").nodes["w"].served[0]["model"] == f"gw:{SONNET}"


def test_auto_advisor_behind_the_translating_gateway_is_emulated_and_counted(
    gw: Gateway, tmp_path: Path
) -> None:
    # The executor (a GPT behind the gateway) asks its advisor; auto mode there is the emulated
    # advisor, so the consult is a call flowgraph makes, counts and prices itself.
    gw.upstream.replies += [
        {"tool": "advisor", "args": {"question": "which fix?"}},
        "Use a binary search.",  # the consult
        "Done.",
    ]
    pricing = DEFAULT_PRICING.with_prices({f"gw:{GPT}": GPT_PRICE})
    g = Graph("g", client=gw.endpoints(stream=False), pricing=pricing)
    advisor = Advisor(model=f"gw:{GPT}", mode="auto")
    g.node("r", Role("r", "x", model=GPT, endpoint="gw", advisor=advisor), "t")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["r"] == "Done."
    record = Ledger.read(tmp_path / "run").nodes["r"]
    assert "advisor_20260301" not in json.dumps(gw.upstream.received)  # no native tool sent
    [consult] = record.consults
    assert consult["mode"] == "emulated" and consult["advice"] == "Use a binary search."
    assert len(gw.upstream.received) == 3  # the turn, the consult, the last turn: nothing hidden
    per_call = (PROMPT_TOKENS * 1.25 + COMPLETION_TOKENS * 10.0) / 1e6
    assert record.cost_usd == pytest.approx(3 * per_call)


def _native_gateway(gw: Gateway, *, stream: bool = False) -> Endpoints:
    """The gateway trusted with the native advisor (``Endpoint(advisor="native")``)."""
    os.environ[KEY_ENV] = MASTER_KEY
    return Endpoints({"gw": Endpoint(gw.url, api_key_env=KEY_ENV, stream=stream,
                                     advisor="native")})  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "stream"), [("native", False), ("auto", True)], ids=["native", "auto-on-native"]
)
def test_a_native_consult_the_translating_gateway_runs_itself_is_flagged(
    gw: Gateway, tmp_path: Path, cli: Callable[..., Any], mode: Any, stream: bool
) -> None:
    # LiteLLM's MessagesInterceptor runs the advisor loop for a non-Anthropic model: the
    # executor's call, the consult and the executor's last call, of which only the last comes
    # back, with no advisor blocks and no usage.iterations.
    gw.upstream.replies += [
        {"tool": "advisor", "args": {"question": "which fix?"}},
        "Use a binary search.",  # the consult, made by the gateway
        "Done.",
    ]
    events: list[Any] = []
    g = Graph("g", client=_native_gateway(gw, stream=stream))
    advisor = Advisor(model=f"gw:{GPT}", mode=mode)
    g.node("r", Role("r", "x", model=GPT, endpoint="gw", advisor=advisor), "t")
    result = g.run_sync(run_dir=tmp_path / "run", on_event=events.append)
    assert result.ok, result.errors
    assert result["r"] == "Done."
    sent = json.dumps(gw.upstream.received[0])
    assert '"advisor"' in sent  # the native tool went out (as LiteLLM's own function tool)
    assert len(gw.upstream.received) == 3  # three upstream calls were paid for...
    record = Ledger.read(tmp_path / "run").nodes["r"]
    assert record.spend and sum(r["calls"] for r in record.spend.values()) == 1  # ...one seen
    assert record.consults == []
    [flag] = record.advisor["warnings"]
    assert flag["kind"] == "native_unaccounted" and "mode='emulated'" in flag["message"]
    assert [e.kind for e in events if type(e).__name__ == "AdvisorWarning"] == [
        "native_unaccounted"
    ]
    report = cli("cost", str(tmp_path / "run"))
    assert report.returncode == 0, report.stderr
    assert "warning: node 'r': gw:openai/gpt-5.5 was offered the native advisor" in report.stdout


def test_a_native_consult_forwarded_to_anthropic_style_upstream_is_counted_not_flagged(
    gw: Gateway, tmp_path: Path
) -> None:
    # The forwarded route keeps the API's advisor blocks and iterations: nothing to flag.
    gw.emulator.script(HAIKU, [Reply.consult("asking"), Reply.text("fixed")])
    gw.emulator.script(SONNET, ["Check the loop bound."])
    g = Graph("g", client=_native_gateway(gw))
    advisor = Advisor(model=SONNET, mode="native")
    g.node("r", Role("r", "x", model=HAIKU, endpoint="gw", advisor=advisor), "t")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    record = Ledger.read(tmp_path / "run").nodes["r"]
    [consult] = record.consults
    assert consult["mode"] == "native" and consult["advice"].startswith("Check the loop bound")
    assert consult["input_tokens"] and consult["cost_usd"]  # its iteration came through, priced
    assert "warnings" not in (record.advisor or {})


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


class Verdict(BaseModel):
    approved: bool
    notes: str


@pytest.mark.parametrize("stream", [True, False])
def test_tools_and_structured_output_through_the_translating_gateway(
    gw: Gateway, tmp_path: Path, stream: bool
) -> None:
    gw.upstream.replies += [
        {"tool": "word_count", "args": {"text": "one two three"}, "id": "call_wc"},
        "There are 3 words.",
        "Looks fine to me.",  # not the JSON asked for: sent back with the validation error
        '{"approved": true, "notes": "3 words"}',
    ]
    pricing = DEFAULT_PRICING.with_prices({f"gw:{GPT}": GPT_PRICE})
    g = Graph("g", client=gw.endpoints(stream=stream), pricing=pricing)
    counter = Role("counter", "Use your tools.", model=GPT, endpoint="gw", tools=[word_count])
    count = g.node("count", counter, "How many words are in 'one two three'?")
    judge = Role("judge", "Judge the answer.", model=GPT, endpoint="gw", output=Verdict)
    g.node("judge", judge, "Judge: {count}", after=[count])
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert result["count"] == "There are 3 words."
    assert Verdict.model_validate(result["judge"]) == Verdict(approved=True, notes="3 words")
    first, second, third, fourth = gw.upstream.received
    [offered] = first["tools"]
    assert offered["function"]["name"] == "word_count"
    assert offered["function"]["parameters"]["properties"]["text"]["type"] == "string"
    answered = [m for m in second["messages"] if m["role"] == "tool"]
    assert answered == [{"role": "tool", "tool_call_id": "call_wc", "content": "3"}]
    assert '"title": "Verdict"' in third["messages"][-1]["content"][0]["text"]  # the schema
    prose, feedback = fourth["messages"][-2:]
    assert prose == {"role": "assistant", "content": "Looks fine to me."}
    assert "did not validate against Verdict" in feedback["content"][0]["text"]
    doc = Ledger.read(tmp_path / "run")
    assert [t["endpoint"] for n in ("count", "judge") for t in doc.nodes[n].served] == ["gw"] * 4
    per_call = (PROMPT_TOKENS * 1.25 + COMPLETION_TOKENS * 10.0) / 1e6
    assert doc.nodes["count"].cost_usd == pytest.approx(2 * per_call)
    assert doc.nodes["judge"].cost_usd == pytest.approx(2 * per_call)
