"""Test helpers: a scripted in-process model, and a Messages-API emulator for the real SDK.

Neither imports the ``anthropic`` SDK: the emulator is a plain HTTP server that any client
(the SDK among them) can talk to.
"""

from flowgraph.testing.emulator import Emulator, Fault, Reply
from flowgraph.testing.scripted import ScriptedModel, text, tool_call

__all__ = ["Emulator", "Fault", "Reply", "ScriptedModel", "text", "tool_call"]
