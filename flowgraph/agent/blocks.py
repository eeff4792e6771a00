"""Message blocks the agent builds: tool results, and a conversation as plain text."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["as_text", "tool_result"]


def tool_result(use: Mapping[str, Any], content: str, is_error: bool = False) -> dict[str, Any]:
    """The ``tool_result`` block that answers the ``tool_use`` block ``use``."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use["id"], "content": content}
    if is_error:
        block["is_error"] = True
    return block


def as_text(system: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """A conversation as plain text, for a model that reads it (the advisor)."""
    lines = [f"--- Instructions ---\n{system}"]
    for message in messages:
        content = message["content"]
        text = content if isinstance(content, str) else "\n".join(map(_block_text, content))
        lines.append(f"--- {message['role']} ---\n{text}")
    return "\n".join(lines)


def _block_text(block: Mapping[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    shown = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(shown, default=str)
