"""Tests for flowgraph.demo: the scripted feature team really edits and tests a project."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Context, Event, NodeFinished, NodeStarted, ToolCalled
from flowgraph.declare.nodes import RoleNode
from flowgraph.demo import (
    BACKEND_FALLBACK,
    DEFAULT_FEATURE,
    DEMO_API_KEY,
    EmulatedModel,
    build_graph,
    emulated_client,
    offline_demo,
    scripted_client,
)
from flowgraph.demo.steps import prepare
from flowgraph.events import FallbackTaken
from flowgraph.models.seam import ModelResponse
from flowgraph.testing import tool_call

NODES = ["prepare", "architect", "backend", "frontend", "run_tests", "tester", "reviewer"]
ROLES = ["architect", "backend", "frontend", "tester", "reviewer"]


def _ctx(workspace: Path) -> Context:
    return Context(node="t", input={}, outputs={}, run_dir=None, workspace=workspace)


def _with_bug(reply: Any) -> Any:
    """The backend's reply, but the store it writes marks future items overdue instead."""
    if isinstance(reply, ModelResponse) and reply.tool_uses:
        args = dict(reply.tool_uses[0]["input"])
        if args.get("file_path") == "todo/store.py" and "content" in args:
            args["content"] = args["content"].replace("self.due < today", "self.due > today")
            return tool_call("Write", **args)
    return reply


def test_demo_passes_every_node_and_leaves_a_working_project(tmp_path: Path) -> None:
    result = build_graph().run_sync(client=scripted_client(), run_dir=tmp_path / "run")

    assert result.status == "passed", result.errors
    assert result.statuses == dict.fromkeys(NODES, "passed")
    workspace = tmp_path / "run" / "workspace"
    assert "due: date | None = None" in (workspace / "todo/store.py").read_text()
    for written in ["todo/cli.py", "tests/test_due.py", "tests/test_cli.py"]:
        assert (workspace / written).is_file(), written
    tests = result["run_tests"]
    assert tests["passed"] == 7 and tests["failed"] == 0
    assert "ok   tests.test_due.test_overdue_lists_only_late_pending_items" in tests["output"]
    assert result["tester"].startswith("Test report: 7 passed, 0 failed.")
    assert result["reviewer"]["verdict"] == "approve"
    assert result["architect"]["backend"].startswith("In todo/store.py")

    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
    assert ledger["status"] == "passed"
    assert ledger["input"] == {"feature": DEFAULT_FEATURE}
    assert {n: r["status"] for n, r in ledger["nodes"].items()} == dict.fromkeys(NODES, "passed")
    assert all(f["passes"] for f in ledger["features"])
    assert ledger["nodes"]["reviewer"]["model"].startswith("claude-opus")
    assert ledger["nodes"]["frontend"]["model"].startswith("claude-haiku")


def test_broken_backend_code_fails_run_tests_and_skips_the_reviewers(tmp_path: Path) -> None:
    client = scripted_client()
    backend = client.script["backend"]
    assert isinstance(backend, list)
    client.script["backend"] = [_with_bug(reply) for reply in backend]

    result = build_graph().run_sync(client=client, run_dir=tmp_path / "run")

    assert result.status == "failed"
    assert result.statuses["backend"] == result.statuses["frontend"] == "passed"
    assert result.statuses["run_tests"] == "failed"
    assert (
        "FAIL tests.test_due.test_overdue_lists_only_late_pending_items"
        in result.errors["run_tests"]
    )
    assert result.statuses["tester"] == result.statuses["reviewer"] == "skipped"
    assert {r.node for r in client.requests} == {"architect", "backend", "frontend"}
    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
    assert ledger["nodes"]["run_tests"]["status"] == "failed"
    assert "tests failed: 5 passed, 2 failed" in ledger["nodes"]["run_tests"]["error"]


def test_backend_and_frontend_run_in_parallel(tmp_path: Path) -> None:
    events: list[Event] = []
    build_graph().run_sync(
        client=scripted_client(delay=0.005), run_dir=tmp_path / "run", on_event=events.append
    )

    def index(kind: type, node: str) -> int:
        return next(
            i
            for i, e in enumerate(events)
            if isinstance(e, kind) and getattr(e, "node", "") == node
        )

    # Each builder starts before the other finishes: their turns interleave.
    assert index(NodeStarted, "frontend") < index(NodeFinished, "backend")
    assert index(NodeStarted, "backend") < index(NodeFinished, "frontend")
    assert index(NodeStarted, "run_tests") > max(
        index(NodeFinished, "backend"), index(NodeFinished, "frontend")
    )
    assert not [e for e in events if isinstance(e, ToolCalled) and e.is_error]


def test_a_second_run_on_the_same_directory_reuses_every_node(tmp_path: Path) -> None:
    build_graph().run_sync(client=scripted_client(), run_dir=tmp_path / "run")
    client = scripted_client()

    again = build_graph().run_sync(client=client, run_dir=tmp_path / "run")

    assert again.status == "passed" and again.executed == ()
    assert client.requests == []


def test_prepare_copies_the_sample_project_without_overwriting_edits(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path / "workspace")
    first = asyncio.run(prepare(ctx))
    assert {"run_tests.py", "todo/store.py", "tests/test_store.py"} <= set(first["copied"])
    (tmp_path / "workspace" / "todo" / "store.py").write_text("# edited\n")

    second = asyncio.run(prepare(ctx))

    assert second["copied"] == []
    assert (tmp_path / "workspace" / "todo" / "store.py").read_text() == "# edited\n"
    assert not [f for f in second["files"] if "__pycache__" in f]


def test_each_scripted_client_has_its_own_script() -> None:
    one, two = scripted_client(), scripted_client()
    one.script["backend"] = ["nothing"]
    assert two.script["backend"] != ["nothing"]


# -- the demo on the emulator, through the real anthropic SDK ---------------------------------


def _node_of(body: Any) -> str:
    """The demo node a logged request came from, by its system prompt."""
    system = body.get("system")
    text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    roles = [n for n in build_graph().validate().nodes.values() if isinstance(n, RoleNode)]
    return next(n.name for n in roles if n.role.instructions == text)


def _emulated(graph_client: Any) -> EmulatedModel:
    assert isinstance(graph_client, EmulatedModel)
    return graph_client


def test_offline_demo_runs_through_the_sdk_and_a_fallback_absorbs_the_overload(
    tmp_path: Path,
) -> None:
    graph = offline_demo()
    client = _emulated(graph.client)
    events: list[Event] = []
    try:
        result = graph.run_sync(run_dir=tmp_path / "run", on_event=events.append)
    finally:
        client.close()

    assert result.status == "passed", result.errors
    assert result.statuses == dict.fromkeys(NODES, "passed")
    assert result["run_tests"]["passed"] == 7
    assert result["tester"].startswith("Test report: 7 passed, 0 failed.")
    assert result["reviewer"]["verdict"] == "approve"

    # The overload: one 529 on the backend's primary, absorbed by its fallback.
    primary = graph.validate().nodes["backend"].model
    log = client.emulator.requests
    faulted = [r for r in log if r.fault is not None]
    assert [(r.model, r.status, r.fault) for r in faulted] == [(primary, 529, "overloaded")]
    taken = [e for e in events if isinstance(e, FallbackTaken)]
    assert taken and {(e.node, e.from_model, e.to_model) for e in taken} == {
        ("backend", primary, BACKEND_FALLBACK)
    }
    assert "overloaded (529)" in taken[0].reason

    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
    served = ledger["nodes"]["backend"]["served"]
    absorbed = [
        turn
        for turn in served
        if turn["model"] == BACKEND_FALLBACK
        and any("overload" in f["reason"] for f in turn.get("fallbacks", ()))
    ]
    assert absorbed, served
    assert absorbed[0]["fallbacks"][0]["model"] == primary
    # One 529 does not open the shared breaker (a run of failures does): the fallback lasted one
    # call, and the backend's later turns went back to its primary.
    assert served[-1]["model"] == primary and ledger["nodes"]["backend"]["model"] == primary
    assert all(
        "fallbacks" not in t for n in ROLES if n != "backend" for t in ledger["nodes"][n]["served"]
    )

    # Every role's turns went over HTTP, sent by the anthropic SDK, with the key redacted.
    by_node: dict[str, int] = {}
    for request in log:
        assert request.path == "/v1/messages" and request.body["stream"] is True
        headers = request.headers
        assert "anthropic" in headers.get("user-agent", "").lower(), headers
        assert any(name.startswith("x-stainless-") for name in headers), headers
        assert DEMO_API_KEY not in json.dumps(dict(headers))
        by_node[_node_of(request.body)] = by_node.get(_node_of(request.body), 0) + 1
    turns = {n: ledger["nodes"][n]["turns"] for n in ROLES}
    assert by_node == {n: turns[n] + (n == "backend") for n in ROLES}

    # The key never reaches the run directory, in any file.
    files = [f for f in (tmp_path / "run").rglob("*") if f.is_file()]
    assert len(files) > 10
    assert not [f for f in files if DEMO_API_KEY.encode() in f.read_bytes()]


def test_a_second_emulated_run_on_the_same_directory_makes_no_requests(tmp_path: Path) -> None:
    first = offline_demo()
    try:
        assert first.run_sync(run_dir=tmp_path / "run").status == "passed"
    finally:
        _emulated(first.client).close()
    again = offline_demo()
    client = _emulated(again.client)
    try:
        result = again.run_sync(run_dir=tmp_path / "run")
    finally:
        client.close()

    assert result.status == "passed" and result.executed == ()
    assert client.emulator.requests == []


def test_emulated_client_serves_an_edited_script(tmp_path: Path) -> None:
    scripted = scripted_client()
    backend = scripted.script["backend"]
    assert isinstance(backend, list)
    scripted.script["backend"] = [_with_bug(reply) for reply in backend]
    client = emulated_client(scripted=scripted)
    try:
        result = build_graph().run_sync(client=client, run_dir=tmp_path / "run")
    finally:
        client.close()

    assert result.status == "failed"
    assert result.statuses["run_tests"] == "failed"
    assert "2 failed" in result.errors["run_tests"]
    assert {_node_of(r.body) for r in client.emulator.requests} == {
        "architect",
        "backend",
        "frontend",
    }


def test_emulated_client_serves_every_model_and_fallback_of_the_graph() -> None:
    client = emulated_client()
    try:
        emulator = client.emulator
        assert client.base_url == emulator.base_url
        assert client.base_url.startswith("http://127.0.0.1:")
        assert DEMO_API_KEY not in repr(client)
        ids = {
            m
            for n in build_graph().validate().nodes.values()
            if isinstance(n, RoleNode)
            for m in (n.model, *n.fallbacks)
        }
        assert BACKEND_FALLBACK in ids and len(ids) == 4
    finally:
        client.close()
    client.close()  # a second close is harmless


def test_testing_package_and_emulator_do_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "import flowgraph.testing, flowgraph.testing.emulator, flowgraph.demo\n"
        "from flowgraph.testing import Emulator, Fault, Reply\n"
        "loaded = [m for m in sys.modules if m == 'anthropic' or m.startswith('anthropic.')]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_process_with_a_running_emulator_exits_promptly(tmp_path: Path) -> None:
    # The emulator is left running, with an SDK connection open to it: exit must not wait.
    code = (
        "import asyncio, sys\n"
        "from flowgraph.demo import build_graph, emulated_client\n"
        "client = emulated_client()\n"
        "result = asyncio.run(build_graph().run(client=client, run_dir=sys.argv[1]))\n"
        "print(client.base_url, result.status, flush=True)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://127.0.0.1:") and "passed" in done.stdout
    assert time.monotonic() - started < 15


@pytest.mark.slow
def test_cli_demo_prints_the_fallback_and_exits_promptly(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("flowgraph")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "flowgraph.cli.app"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "demo", "--run-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    primary = build_graph().validate().nodes["backend"].model
    assert f"backend: fallback {primary} -> {BACKEND_FALLBACK} (overloaded (529))" in done.stdout
    assert "run passed (7 passed)" in done.stdout
    assert "Traceback" not in done.stderr
    assert elapsed < 60, elapsed
    ledger = json.loads((tmp_path / "d" / "ledger.json").read_text())
    assert ledger["source"] == {
        "target": "flowgraph.demo:offline_demo",
        "kwargs": {"delay": 0.0},
    }
