"""What a tool call gives back to the model."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ToolResult"]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call gave back: text for the model, and whether it is an error."""

    content: str
    is_error: bool = False
