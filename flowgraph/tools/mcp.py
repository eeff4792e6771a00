"""MCP servers as tools, through the official ``mcp`` SDK over stdio.

``MCPServer`` says how to start a server; a role lists the servers it may use
(``Role(mcp_servers=[...])``). The run starts each server once (``McpHub``), lists its tools,
and stops it when the run ends. Each listed tool reaches the model as
``mcp__<server>__<tool>`` (Claude Code's naming) with the schema the server gave; a server's
error, or its failure to answer, becomes a tool error the model reads. The listed schemas are
part of the node's fingerprint, so a server whose tools change re-runs the nodes that use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowgraph.errors import ConfigError
from flowgraph.tools.result import ToolResult

if TYPE_CHECKING:
    from mcp import ClientSession

__all__ = ["MCPServer", "McpHub", "McpTool"]


@dataclass(frozen=True, slots=True)
class MCPServer:
    """An MCP server started over stdio.

    Args:
        name: what its tools are prefixed with (``mcp__<name>__<tool>``).
        command: the program to run, e.g. ``"python"`` or ``"npx"``.
        args: its arguments.
        env: extra environment variables for it (the SDK's safe defaults are kept).
        cwd: the directory it runs in.
        timeout: seconds one tool call may take before it is a tool error.
    """

    name: str
    command: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float = 60.0

    def spec(self) -> dict[str, Any]:
        """How it is started, for fingerprints (its env values are not: they may be secrets)."""
        return {"name": self.name, "command": self.command, "args": list(self.args),
                "env": sorted(self.env), "cwd": self.cwd}  # fmt: skip


class McpTool:
    """One tool an MCP server listed; called like any other tool."""

    def __init__(self, server: MCPServer, session: ClientSession, listed: Any) -> None:
        self.server, self.session = server, session
        self.remote_name: str = listed.name
        self.name = f"mcp__{server.name}__{listed.name}"
        self.description: str = listed.description or listed.name
        self.input_schema: dict[str, Any] = dict(listed.input_schema or {"type": "object"})

    def to_param(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}  # fmt: skip

    def spec(self) -> dict[str, Any]:
        return {**self.to_param(), "server": self.server.spec()}

    async def call(self, arguments: dict[str, Any], context: Any = None) -> ToolResult:
        """Call the tool on its server; any failure is an error result, never a crash."""
        try:
            result = await self.session.call_tool(
                self.remote_name, arguments, read_timeout_seconds=self.server.timeout
            )
        except Exception as exc:  # the server failed, timed out or went away
            return ToolResult(f"MCP server {self.server.name!r} failed: {exc}", is_error=True)
        parts = [getattr(c, "text", None) or json.dumps(c.model_dump(mode="json"))
                 for c in getattr(result, "content", None) or ()]  # fmt: skip
        if not parts and getattr(result, "structured_content", None) is not None:
            parts = [json.dumps(result.structured_content)]
        return ToolResult("\n".join(parts), is_error=bool(getattr(result, "is_error", False)))


class McpHub:
    """The run's MCP servers: started on entry, each listed once, all stopped on exit (in the
    task that started them, as the SDK's task groups require)."""

    def __init__(self, servers: Sequence[MCPServer]) -> None:
        self.servers = {s.name: s for s in servers}
        self.tools: dict[str, list[McpTool]] = {}
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> McpHub:
        try:
            for server in self.servers.values():
                self.tools[server.name] = await self._start(server)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self, server: MCPServer) -> list[McpTool]:
        # Imported here for start-up speed: the SDK takes over half a second to import, and
        # only a run whose roles use MCP servers needs it.
        from mcp import ClientSession, StdioServerParameters, stdio_client

        params = StdioServerParameters(command=server.command, args=list(server.args),
                                       env=dict(server.env) or None, cwd=server.cwd)  # fmt: skip
        try:
            read, write = await self._stack.enter_async_context(stdio_client(params))
            session = await self._stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            listed = await session.list_tools()
        except Exception as exc:
            raise ConfigError(
                f"MCP server {server.name!r} ({server.command} {' '.join(server.args)}) did not "
                f"start: {exc}; check its command and that it speaks MCP over stdio"
            ) from None
        return [McpTool(server, session, t) for t in listed.tools]

    def tools_for(self, servers: Sequence[MCPServer]) -> list[McpTool]:
        """The tools of ``servers``, in order."""
        return [t for s in servers for t in self.tools.get(s.name, [])]

    def digest(self, servers: Sequence[MCPServer]) -> str:
        """A hash of the schemas ``servers`` listed ("" for none), for fingerprints."""
        if not servers:
            return ""
        blob = json.dumps([t.spec() for t in self.tools_for(servers)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
