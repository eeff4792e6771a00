"""Named endpoints: a role picks one, every turn names it, cost groups by it (two emulators)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Graph, Ledger, Role
from flowgraph.agent.native_trace import consult_out_of_sight
from flowgraph.declare.advisor import Advisor
from flowgraph.errors import ConfigError, GraphError
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.endpoint_file import EndpointFile
from flowgraph.models.endpoints import Endpoint, Endpoints, endpoint_of, is_anthropic_api
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage
from flowgraph.money.pricing import Pricing
from flowgraph.testing.emulator import Emulator

WRITER = "claude-sonnet-4-6"
OTHER_LAB = "openai/gpt-5.5"


@pytest.fixture
def two() -> Iterator[tuple[Emulator, Emulator]]:
    with Emulator() as home, Emulator() as gateway:
        yield home, gateway


def test_the_cross_lab_example_runs_offline_on_two_endpoints(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    example = Path(__file__).resolve().parent.parent / "examples" / "cross_lab_review.py"
    result = cli("run", str(example), "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    doc = Ledger.read(run_dir)
    turns = [t for record in doc.nodes.values() for t in record.served]
    assert turns and all("endpoint" in t for t in turns)
    endpoints = {(t["model"], t["endpoint"]) for t in turns}
    assert endpoints == {(WRITER, "default"), (f"gateway:{OTHER_LAB}", "gateway")}
    report = cli("cost", str(run_dir))
    assert report.returncode == 0, report.stderr
    assert "by endpoint" in report.stdout
    table = report.stdout.split("by endpoint", 1)[1]
    lines = [line for line in table.splitlines() if line.strip("│┃ ").startswith("gateway ")]
    assert lines and "$" in lines[0]  # priced at the per-endpoint price given in the example


def test_a_role_on_an_endpoint_goes_there_with_its_fallbacks(
    two: tuple[Emulator, Emulator], tmp_path: Path
) -> None:
    home, gateway = two
    gateway.fault("overloaded", model=OTHER_LAB)  # always: the fallback on the same gateway serves
    gateway.script("openai/gpt-5.4", ["from the gateway's fallback"])
    client = Endpoints(
        {"gateway": AnthropicModel("k", base_url=gateway.base_url)},
        default=AnthropicModel("k", base_url=home.base_url),
    )
    g = Graph("g", client=client)
    chain = ["openai/gpt-5.4", f"default:{WRITER}"]
    g.node("r", Role("r", "x", model=OTHER_LAB, endpoint="gateway", fallbacks=chain), "t")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result["r"] == "from the gateway's fallback"
    assert home.requests == []  # nothing crossed to the other endpoint: it was not needed
    [turn] = Ledger.read(tmp_path / "run").nodes["r"].served
    assert turn["model"] == "gateway:openai/gpt-5.4" and turn["endpoint"] == "gateway"
    assert turn["fallbacks"][0]["model"] == f"gateway:{OTHER_LAB}"


def test_a_fallback_chain_crosses_endpoints(two: tuple[Emulator, Emulator], tmp_path: Path) -> None:
    home, gateway = two
    home.fault("overloaded", model=WRITER)
    gateway.script(WRITER, ["the gateway answered"])
    client = Endpoints(
        {"gateway": AnthropicModel("k", base_url=gateway.base_url)},
        default=AnthropicModel("k", base_url=home.base_url),
    )
    g = Graph("g", client=client)
    g.node("w", Role("w", "x", model=WRITER, fallbacks=[f"gateway:{WRITER}"], retries=0), "t")
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result["w"] == "the gateway answered"
    [turn] = Ledger.read(tmp_path / "run").nodes["w"].served
    assert turn["endpoint"] == "gateway"
    # The gateway was asked for the bare id; the ledger prices it as Anthropic's model.
    assert gateway.requests[0].model == WRITER
    assert Ledger.read(tmp_path / "run").nodes["w"].cost_usd


def test_server_fallbacks_and_native_advisor_go_only_where_they_work(
    monkeypatch: pytest.MonkeyPatch, two: tuple[Emulator, Emulator]
) -> None:
    _, gateway = two
    monkeypatch.setenv("GW_TOKEN", "gw-token-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    client = Endpoints(
        {"gw": Endpoint(gateway.base_url, api_key_env="", auth_token_env="GW_TOKEN"),
         "trusted": Endpoint(gateway.base_url, advisor="native", server_fallbacks=True)},
        default=Endpoint(),
    )  # fmt: skip
    assert client.supports_advisor(WRITER) and client.supports_server_fallbacks(WRITER)
    assert not client.supports_advisor(f"gw:{WRITER}")
    assert not client.supports_server_fallbacks(f"gw:{WRITER}")
    assert client.supports_advisor(f"trusted:{WRITER}")
    request = ModelRequest(f"gw:{WRITER}", "s", [{"role": "user", "content": "hi"}],
                           extra={"fallbacks": [{"model": "claude-haiku-4-5"}]})  # fmt: skip

    async def go() -> None:
        try:
            await client.request(request)
        finally:
            await client.aclose()

    asyncio.run(go())
    [sent] = gateway.requests
    assert "fallbacks" not in sent.body and sent.model == WRITER
    assert "gw-token-value" not in json.dumps(sent.headers)  # auth headers are redacted in logs


def test_bad_endpoint_names_and_missing_credentials_say_how_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(GraphError, match="not an endpoint name"):
        Role("r", "x", endpoint="a:b")
    with pytest.raises(ConfigError, match="not usable"):
        Endpoints({"default": AnthropicModel("k")})
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(ConfigError, match="set NOPE_KEY"):
        Endpoints({"gw": Endpoint("http://127.0.0.1:1", api_key_env="NOPE_KEY")})
    with pytest.raises(ConfigError, match="unknown endpoint"):
        Endpoints({}).model_for("nowhere")


def test_endpoint_spelling() -> None:
    assert endpoint_of("gateway:openai/gpt-5.5") == "gateway"
    assert endpoint_of("claude-sonnet-4-6") == "default"
    assert endpoint_of("anthropic.claude-v2:1") == "default"  # a Bedrock-style id, no prefix
    assert is_anthropic_api("https://api.anthropic.com/v1")
    assert not is_anthropic_api("http://127.0.0.1:4000")


HOME_SECRET = "home-key-0123456789"
GATEWAY_SECRET = "gw-token-9876543210"
GRAPH_FILE = f"""
from flowgraph import Graph, Role

graph = Graph("xlab")
notes = graph.node("notes", Role("writer", "Write.", model="{WRITER}"), "write")
graph.node("review", Role("reviewer", "Review.", model="{OTHER_LAB}", endpoint="gateway"),
           "review {{notes}}", after=[notes])
"""


def _endpoints_file(path: Path, home: Emulator, gateway: Emulator, extra: str = "") -> Path:
    path.write_text(
        f"""
[endpoints.default]
base_url = "{home.base_url}"
api_key_env = "HOME_KEY"

[endpoints.gateway]
base_url = "{gateway.base_url}"
api_key_env = ""
auth_token_env = "GATEWAY_TOKEN"
advisor = "emulated"
stream = false

[endpoints.gateway.prices]
"{OTHER_LAB}" = {{ input = 1.25, output = 10.0 }}
{extra}"""
    )
    return path


@pytest.fixture
def xlab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Emulator, Emulator, Path, Path]]:
    """Two emulators that each accept only their own credential (read from the environment),
    a graph file with no client, and an endpoints file pointing at the two."""
    monkeypatch.setenv("HOME_KEY", HOME_SECRET)
    monkeypatch.setenv("GATEWAY_TOKEN", GATEWAY_SECRET)
    graph = tmp_path / "xlab.py"
    graph.write_text(GRAPH_FILE)
    with Emulator(api_key=HOME_SECRET) as home, Emulator(api_key=GATEWAY_SECRET) as gateway:
        yield home, gateway, graph, _endpoints_file(tmp_path / "endpoints.toml", home, gateway)


def test_an_endpoints_file_declares_the_endpoints_of_a_cli_run_and_resume_reuses_it(
    cli: Callable[..., Any], xlab: tuple[Emulator, Emulator, Path, Path], tmp_path: Path
) -> None:
    home, gateway, graph, config = xlab
    run_dir = tmp_path / "run"
    home.script(WRITER, ["- Faster resume."])
    gateway.fault("status", model=OTHER_LAB, status=400, call=0)  # the review fails once
    first = cli("run", str(graph), "--run-dir", str(run_dir), "--endpoints", str(config))
    assert first.returncode == 1, first.stderr
    settings = Ledger.read(run_dir).settings
    assert settings["endpoints"]["gateway"]["auth_token_env"] == "GATEWAY_TOKEN"
    assert settings["endpoints"]["gateway"]["advisor"] == "emulated"
    assert settings["endpoints"]["gateway"]["prices"] == {OTHER_LAB: {"input": 1.25,
                                                                     "output": 10.0}}  # fmt: skip
    assert "endpoints=2 endpoints" in cli("status", str(run_dir)).stdout
    config.unlink()  # the resume works from what the ledger recorded
    again = cli("resume", str(run_dir))
    assert again.returncode == 0, again.stderr
    doc = Ledger.read(run_dir)
    review = doc.nodes["review"]
    assert [t["endpoint"] for t in review.served] == ["gateway"]
    priced = Pricing({f"gateway:{OTHER_LAB}": {"input": 1.25, "output": 10.0}})
    assert review.cost_usd == pytest.approx(
        priced.price(Usage.from_dict(review.usage), f"gateway:{OTHER_LAB}").usd
    )  # at the file's price, not unknown
    assert [t["endpoint"] for t in doc.nodes["notes"].served] == ["default"]
    assert [r.status for r in gateway.requests] == [400, 200]
    assert not gateway.requests[1].body.get("stream")  # stream = false, from the file
    written = b"".join(p.read_bytes() for p in run_dir.rglob("*") if p.is_file())
    assert HOME_SECRET.encode() not in written and GATEWAY_SECRET.encode() not in written


def test_the_endpoints_file_can_come_from_the_environment(
    cli: Callable[..., Any],
    xlab: tuple[Emulator, Emulator, Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, gateway, graph, config = xlab
    monkeypatch.setenv("FLOWGRAPH_ENDPOINTS", str(config))
    result = cli("run", str(graph), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert [r.model for r in gateway.requests] == [OTHER_LAB]
    report = cli("cost", str(tmp_path / "run"))
    table = report.stdout.split("by endpoint", 1)[1]
    assert any(line.strip("│┃ ").startswith("gateway ") and "$" in line
               for line in table.splitlines())  # fmt: skip


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[endpoints.gateway\n", "cannot read endpoints file"),
        ("[other]\nx = 1\n", "declares no endpoints"),
        ('[endpoints.gateway]\nbase_url = "http://h"\nurl = "x"\n', "unknown setting 'url'"),
        ('[endpoints.gateway]\napi_key = "sk-ant-secret-value"\n', "api_key_env = "),
        ('[endpoints.gateway]\napi_key_env = "sk-ant-secret-value"\n', "NAME of an environment"),
        ('[endpoints.gateway]\nadvisor = "sometimes"\n', "use 'auto', 'native' or 'emulated'"),
        ("[endpoints.gateway]\nstream = 1\n", "stream must be bool"),
        ('[endpoints."a:b"]\n', "not usable"),
        ('[endpoints.gateway]\nbase_url = "https://u:sk-ant-secret-value@h"\n', "credentials"),
        ('[endpoints.gateway]\napi_key_env = "NO_SUCH_VAR_SET"\n', "set NO_SUCH_VAR_SET"),
        ('[endpoints.gateway.prices]\n"m" = { input = 1 }\n', "needs input and output"),
        (None, "cannot read endpoints file"),
    ],
)
def test_a_bad_endpoints_file_is_one_error_line_and_no_run(
    cli: Callable[..., Any], tmp_path: Path, content: str | None, says: str
) -> None:
    graph = tmp_path / "xlab.py"
    graph.write_text(GRAPH_FILE)
    config = tmp_path / "endpoints.toml"
    if content is not None:
        config.write_text(content)
    run_dir = tmp_path / "run"
    result = cli("run", str(graph), "--run-dir", str(run_dir), "--endpoints", str(config))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and says in line, line
    assert "secret-value" not in line  # a secret written by mistake is never echoed
    assert not run_dir.exists()


def test_endpoints_as_data_from_code(
    xlab: tuple[Emulator, Emulator, Path, Path], tmp_path: Path
) -> None:
    _, gateway, _, config = xlab
    g = Graph("g")
    g.node("r", Role("r", "x", model=OTHER_LAB, endpoint="gateway"), "t")
    result = g.run_sync(endpoints=EndpointFile.from_file(config), run_dir=tmp_path / "run")
    assert result.ok, result.errors
    assert [r.model for r in gateway.requests] == [OTHER_LAB]
    record = Ledger.read(tmp_path / "run")
    assert record.settings["endpoints"]["default"]["api_key_env"] == "HOME_KEY"
    assert record.nodes["r"].cost_usd  # priced at the file's price


EVAL_SUITE = f"""
from flowgraph import Graph, Role
from flowgraph.evals import Config, Suite, Task

def graph(config):
    g = Graph("xeval")
    g.node("review", Role("reviewer", "Review.", model=config.model, endpoint="gateway"), "go")
    return g

suite = Suite("xeval", graph=graph, tasks=[Task("one"), Task("two")],
              configs=[Config("gateway solo", "{OTHER_LAB}")])
"""


def test_eval_takes_an_endpoints_file_and_its_roles_reach_the_named_endpoint(
    cli: Callable[..., Any], xlab: tuple[Emulator, Emulator, Path, Path], tmp_path: Path
) -> None:
    home, gateway, _, config = xlab
    suite = tmp_path / "xeval.py"
    suite.write_text(EVAL_SUITE)
    bad = cli("eval", str(suite), "--out", str(tmp_path / "no"), "--endpoints",
              str(tmp_path / "missing.toml"))  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read endpoints file")
    assert not (tmp_path / "no").exists()
    out = tmp_path / "out"
    done = cli("eval", str(suite), "--out", str(out), "--json", "--endpoints", str(config))
    assert done.returncode == 0, done.stderr
    assert [r.model for r in gateway.requests] == [OTHER_LAB, OTHER_LAB]  # one per task
    assert home.requests == []
    [row] = json.loads(done.stdout)["configs"]
    assert row["completion_rate"] == 1.0
    priced = Pricing({f"gateway:{OTHER_LAB}": {"input": 1.25, "output": 10.0}})
    costs = []
    for task in ("one", "two"):
        run = Ledger.read(out / "gateway-solo" / task)
        review = run.nodes["review"]
        assert [t["endpoint"] for t in review.served] == ["gateway"]
        expected = priced.price(Usage.from_dict(review.usage), f"gateway:{OTHER_LAB}").usd
        assert review.cost_usd == pytest.approx(expected) and expected > 0  # the file's price
        assert run.settings["endpoints"]["gateway"]["auth_token_env"] == "GATEWAY_TOKEN"
        costs.append(expected)
    assert row["cost_per_task"] == pytest.approx(sum(costs) / 2)


def test_batch_takes_an_endpoints_file_for_each_of_its_runs(
    cli: Callable[..., Any], xlab: tuple[Emulator, Emulator, Path, Path], tmp_path: Path
) -> None:
    home, gateway, graph, config = xlab
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("{}\n{}\n")
    runs = tmp_path / "runs"
    done = cli("batch", str(graph), "--inputs", str(inputs), "--runs-dir", str(runs),
               "--endpoints", str(config))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [r.model for r in gateway.requests] == [OTHER_LAB, OTHER_LAB]  # each run's review
    assert [r.model for r in home.requests] == [WRITER, WRITER]  # each run's notes
    for run_dir in runs.iterdir():
        doc = Ledger.read(run_dir)
        assert [t["endpoint"] for t in doc.nodes["review"].served] == ["gateway"]
        assert doc.nodes["review"].cost_usd  # at the file's price
        assert doc.settings["endpoints"]["gateway"]["auth_token_env"] == "GATEWAY_TOKEN"


@pytest.mark.parametrize("trusted", [False, True], ids=["bare-model", "endpoint-native"])
def test_a_native_answer_without_a_consult_from_an_anthropic_style_endpoint_is_not_flagged(
    monkeypatch: pytest.MonkeyPatch,
    two: tuple[Emulator, Emulator],
    tmp_path: Path,
    trusted: bool,
) -> None:
    _, gateway = two
    gateway.script("claude-haiku-4-5", ["no consult needed"])
    monkeypatch.setenv("GW_KEY", "k")
    model = AnthropicModel("k", base_url=gateway.base_url)
    client: Any = (
        Endpoints({"gw": Endpoint(gateway.base_url, api_key_env="GW_KEY", advisor="native")})
        if trusted
        else model
    )
    g = Graph("g", client=client)
    advisor = Advisor(model="gw:claude-opus-4-7" if trusted else "claude-opus-4-7", mode="native")
    role = Role("r", "x", model="claude-haiku-4-5", endpoint="gw" if trusted else None,
                advisor=advisor)  # fmt: skip
    g.node("a", role, "t")
    assert g.run_sync(run_dir=tmp_path / "run").ok
    assert gateway.requests[0].body["tools"][-1]["type"] == "advisor_20260301"
    assert gateway.requests[0].body["tools"][-1]["model"] == "claude-opus-4-7"  # the bare id
    assert "warnings" not in (Ledger.read(tmp_path / "run").nodes["a"].advisor or {})


def test_the_rule_for_a_native_consult_out_of_sight() -> None:
    def answer(id: str, content: list[dict[str, Any]], iterations: Any = ()) -> ModelResponse:
        return ModelResponse(content, "end_turn", "m", Usage(1, 1, iterations=iterations), id)

    text = [{"type": "text", "text": "Done."}]
    consult = [{"type": "server_tool_use", "id": "s", "name": "advisor", "input": {}},
               {"type": "advisor_tool_result", "tool_use_id": "s",
                "content": {"type": "advisor_result", "text": "a"}}, *text]  # fmt: skip
    advisor_usage = ({"type": "advisor_message", "model": "o", "input_tokens": 1},)
    assert consult_out_of_sight(answer("chatcmpl-1", text))  # translated, no trace: flagged
    assert not consult_out_of_sight(answer("msg_01", text))  # the executor did not consult
    assert not consult_out_of_sight(answer("chatcmpl-1", consult))
    assert not consult_out_of_sight(answer("chatcmpl-1", text, advisor_usage))
    assert not consult_out_of_sight(answer("", text))  # no id: no evidence either way
