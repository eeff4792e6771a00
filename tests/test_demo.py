"""Tests for flowgraph.demo: the scripted feature team really edits and tests a project."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Context, Event, NodeFinished, NodeStarted, ToolCalled
from flowgraph.demo import DEFAULT_FEATURE, build_graph, scripted_client
from flowgraph.demo.steps import prepare
from flowgraph.demo.tools import WorkspaceError, list_files, read_file, write_file
from flowgraph.model import ModelResponse
from flowgraph.testing import tool_call

NODES = ["prepare", "architect", "backend", "frontend", "run_tests", "tester", "reviewer"]


def _ctx(workspace: Path) -> Context:
    return Context(node="t", input={}, outputs={}, run_dir=None, workspace=workspace)


def _with_bug(reply: Any) -> Any:
    """The backend's reply, but the store it writes marks future items overdue instead."""
    if isinstance(reply, ModelResponse) and reply.tool_uses:
        args = dict(reply.tool_uses[0]["input"])
        if args.get("path") == "todo/store.py" and "content" in args:
            args["content"] = args["content"].replace("self.due < today", "self.due > today")
            return tool_call("write_file", **args)
    return reply


def test_demo_passes_every_node_and_leaves_a_working_project(tmp_path: Path) -> None:
    result = build_graph().run_sync(client=scripted_client(), run_dir=tmp_path / "run")

    assert result.status == "passed", result.errors
    assert result.statuses == dict.fromkeys(NODES, "passed")
    workspace = tmp_path / "run" / "workspace"
    assert "due: date | None = None" in (workspace / "todo/store.py").read_text()
    for written in ["docs/design.md", "todo/cli.py", "tests/test_due.py", "tests/test_cli.py"]:
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


@pytest.mark.parametrize("path", ["../ledger.json", "/etc/passwd", "docs/../../x", "", "link/x"])
def test_file_tools_refuse_paths_outside_the_workspace(tmp_path: Path, path: str) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "link").symlink_to(tmp_path)
    ctx = _ctx(workspace)
    with pytest.raises(WorkspaceError, match=r"not allowed|outside the workspace"):
        asyncio.run(write_file(path, "x", ctx))
    with pytest.raises(WorkspaceError):
        asyncio.run(read_file(path, ctx))
    assert not (tmp_path / "x").exists()


def test_file_tools_read_write_and_list_inside_the_workspace(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    assert asyncio.run(write_file("a/b.txt", "one\ntwo\n", ctx)) == "wrote a/b.txt (2 lines)"
    assert asyncio.run(read_file("a/b.txt", ctx)) == "one\ntwo\n"
    assert asyncio.run(list_files(ctx)) == "a/b.txt"
    assert asyncio.run(list_files(ctx, "a")) == "a/b.txt"
    with pytest.raises(WorkspaceError, match="list_files shows what exists"):
        asyncio.run(read_file("missing.txt", ctx))


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
