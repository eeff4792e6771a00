"""MCP servers as tools: a role calls a real MCP server (the SDK's own server API) over stdio
through the official ``mcp`` client; failures are tool errors; schemas enter fingerprints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flowgraph import ConfigError, Graph, Ledger, Role
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.emulator import Emulator, Reply
from flowgraph.tools.mcp import MCPServer

KEY = "sk-test-mcp"
SERVER_FILE = Path(__file__).parent / "servers" / "notes_mcp.py"
MODEL = "claude-sonnet-5-5"

pytestmark = pytest.mark.slow  # each test starts a server process


def notes_server(store: Path, description: str = "Add a note to the store.") -> MCPServer:
    return MCPServer("notes", sys.executable, [str(SERVER_FILE), str(store)],
                     env={"NOTES_DESCRIPTION": description})  # fmt: skip


def graph(store: Path, description: str = "Add a note to the store.") -> Graph:
    g = Graph("mcp_team", model="sonnet")
    role = Role("scribe", "You keep notes.", mcp_servers=[notes_server(store, description)])
    g.node("scribe", role, "note the plan")
    return g


def test_a_role_calls_an_mcp_servers_tools_over_stdio(tmp_path: Path) -> None:
    store = tmp_path / "notes.txt"
    replies = [
        Reply.tool_use("mcp__notes__add_note", {"text": "ship it"}),
        Reply.tool_uses(
            [("mcp__notes__count_notes", {}), ("mcp__notes__explode", {"reason": "test"})]
        ),
        "noted",
    ]
    with Emulator({MODEL: replies}, api_key=KEY) as emu:
        result = graph(store).run_sync(client=AnthropicModel(KEY, base_url=emu.base_url),
                                       run_dir=tmp_path / "run")  # fmt: skip
        tools = {t["name"]: t for t in emu.requests[0].body["tools"]}
        first = emu.requests[1].body["messages"][-1]["content"][0]
        second = emu.requests[2].body["messages"][-1]["content"]
    assert result.ok and result["scribe"] == "noted"
    assert set(tools) == {"mcp__notes__add_note", "mcp__notes__count_notes", "mcp__notes__explode"}
    assert tools["mcp__notes__add_note"]["input_schema"]["required"] == ["text"]
    assert tools["mcp__notes__add_note"]["description"] == "Add a note to the store."
    assert store.read_text() == "ship it\n"
    assert "noted: ship it" in first["content"] and not first.get("is_error")
    assert "1" in second[0]["content"] and not second[0].get("is_error")
    assert second[1]["is_error"] is True and "exploded: test" in second[1]["content"]
    assert Ledger.read(tmp_path / "run").nodes["scribe"].tool_calls == 3


def test_a_server_whose_schemas_change_re_runs_its_nodes(tmp_path: Path) -> None:
    store = tmp_path / "notes.txt"
    with Emulator({MODEL: ["first", "second"]}, api_key=KEY) as emu:
        client = AnthropicModel(KEY, base_url=emu.base_url)
        assert graph(store).run_sync(client=client, run_dir=tmp_path / "run").ok
        assert graph(store).run_sync(client=client, run_dir=tmp_path / "run")["scribe"] == "first"
        # started the same way, but it lists a different description now
        changed = graph(store, "Append a note.")
        assert changed.validate().fingerprint == graph(store).validate().fingerprint
        assert changed.run_sync(client=client, run_dir=tmp_path / "run")["scribe"] == "second"


def test_a_server_that_does_not_start_is_one_clear_error(tmp_path: Path) -> None:
    g = Graph("mcp_team", model="sonnet")
    bad = MCPServer("ghost", sys.executable, ["-c", "import sys; sys.exit(3)"])
    g.node("scribe", Role("scribe", "x", mcp_servers=[bad]), "go")
    with pytest.raises(ConfigError, match=r"MCP server .ghost.*did not start"):
        g.run_sync(client=AnthropicModel(KEY, base_url="http://127.0.0.1:9"))
