"""Test helpers: a scripted in-process model, and a Messages-API emulator for the real SDK."""

from flowgraph.testing.scripted import ScriptedModel, text, tool_call

__all__ = ["ScriptedModel", "text", "tool_call"]
