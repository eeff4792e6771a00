"""Test helpers: a scripted in-process model, and a Messages-API emulator for the real SDK.

Neither imports the ``anthropic`` SDK: the emulator is a plain HTTP server that any client
(the SDK among them) can talk to.
"""

from typing import TYPE_CHECKING, Any

from flowgraph.testing.scripted import ScriptedModel, text, tool_call

if TYPE_CHECKING:
    from flowgraph.testing.emulator import Emulator, Fault, Reply

__all__ = ["Emulator", "Fault", "Reply", "ScriptedModel", "text", "tool_call"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `python -m flowgraph.testing.emulator` does not find the
    # module already imported by its own package (runpy warns about that).
    if name in ("Emulator", "Fault", "Reply"):
        from flowgraph.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module 'flowgraph.testing' has no attribute {name!r}")
