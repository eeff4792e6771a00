"""A small MCP server written with the official SDK's server API, run over stdio by the tests:
it keeps notes in a file and can fail on purpose."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("notes")
STORE = Path(sys.argv[1])


# NOTES_DESCRIPTION changes what the server lists without changing how it is started.
@server.tool(description=os.environ.get("NOTES_DESCRIPTION", "Add a note to the store."))
def add_note(text: str) -> str:
    with STORE.open("a") as fh:
        fh.write(text + "\n")
    return f"noted: {text}"


@server.tool()
def count_notes() -> int:
    """How many notes the store holds."""
    return len(STORE.read_text().splitlines()) if STORE.exists() else 0


@server.tool()
def explode(reason: str) -> str:
    """Fail on purpose."""
    raise ToolError(f"exploded: {reason}")


if __name__ == "__main__":
    server.run()
