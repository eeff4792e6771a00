"""Approval per tool call: the call pauses the node, the run ends waiting_approval naming the
tool and its input; approve (or reject with a note) and resume carries on the same
conversation without asking the model any earlier turn again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowgraph import Graph, Ledger, Role, tool
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.emulator import Emulator, Reply
from flowgraph.tools import CODER

KEY = "sk-test-approvals"
MODEL = "claude-sonnet-5-5"


def graph() -> Graph:
    g = Graph("guarded", model="sonnet")
    g.node("build", Role("builder", "You build.", tools=CODER, approve=["Bash"]), "build it")
    g.node("after", Role("after", "You check."), "check", after=["build"])
    return g


SCRIPT: list[Any] = [
    Reply.tool_uses(
        [
            ("Write", {"file_path": "a.txt", "content": "one\n"}),
            ("Bash", {"command": "cat a.txt > b.txt && echo copied"}),
        ]
    ),
    "built",
    "checked",
]


def test_an_approved_call_resumes_the_conversation_without_repeating_a_turn(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    work, run = tmp_path / "project", tmp_path / "run"
    work.mkdir()
    with Emulator({MODEL: SCRIPT}, api_key=KEY) as emu:
        client = AnthropicModel(KEY, base_url=emu.base_url)
        first = graph().run_sync(client=client, run_dir=run, workspace=work)
        assert first.status == "waiting_approval"
        record = Ledger.read(run).nodes["build"]
        assert record.status == "waiting_approval"
        assert 'Bash {"command": "cat a.txt > b.txt && echo copied"}' in str(record.error)
        assert emu.calls(MODEL) == 1 and not (work / "a.txt").exists()  # nothing ran yet
        shown = cli("status", str(run))
        assert "waiting_approval" in shown.stdout
        assert cli("approve", str(run), "build", "--note", "fine").returncode == 0
        second = graph().run_sync(client=client, run_dir=run, workspace=work)
        assert second.ok, second.errors
        assert emu.calls(MODEL) == 3  # the paused turn was not asked again
        resumed = emu.requests[1].body["messages"]
    assert [m["role"] for m in resumed] == ["user", "assistant", "user"]
    results = resumed[-1]["content"]
    assert "wrote a.txt" in results[0]["content"] and "copied" in results[1]["content"]
    assert (work / "b.txt").read_text() == "one\n"
    doc = Ledger.read(run)
    assert doc.nodes["build"].turns == 2 and doc.nodes["build"].pending_approval is None


def test_a_rejected_call_is_an_error_the_model_reads(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    work, run = tmp_path / "project", tmp_path / "run"
    work.mkdir()
    with Emulator({MODEL: SCRIPT}, api_key=KEY) as emu:
        client = AnthropicModel(KEY, base_url=emu.base_url)
        assert graph().run_sync(client=client, run_dir=run, workspace=work).status == (
            "waiting_approval"
        )
        assert cli("reject", str(run), "build", "--note", "no shell please").returncode == 0
        assert graph().run_sync(client=client, run_dir=run, workspace=work).ok
        results = emu.requests[1].body["messages"][-1]["content"]
    assert results[1]["is_error"] is True
    assert "a person rejected this call: no shell please" in results[1]["content"]
    assert (work / "a.txt").read_text() == "one\n" and not (work / "b.txt").exists()


def test_a_tool_can_require_approval_itself(tmp_path: Path) -> None:
    @tool(approval=True)
    def deploy(target: str) -> str:
        """Deploy."""
        return f"deployed {target}"

    g = Graph("deploys", model="sonnet")
    g.node("ship", Role("shipper", "You ship.", tools=[deploy]), "ship")
    with Emulator({MODEL: [Reply.tool_use("deploy", {"target": "prod"}), "shipped"]},
                  api_key=KEY) as emu:  # fmt: skip
        result = g.run_sync(client=AnthropicModel(KEY, base_url=emu.base_url),
                            run_dir=tmp_path / "run")  # fmt: skip
    assert result.status == "waiting_approval"
    assert 'deploy {"target": "prod"}' in str(Ledger.read(tmp_path / "run").nodes["ship"].error)
