"""The demo's models served over HTTP: the scripted turns, through the real ``anthropic`` SDK.

``emulated_client`` starts flowgraph's Messages-API emulator (``flowgraph.testing.Emulator``) on
127.0.0.1 and returns an ``AnthropicModel`` pointed at it, so the demo exercises the whole real
path — SDK, streaming, error mapping, the router's fallback chain — with no network and no key.
The emulator answers from the same per-node scripts as ``scripted_client``: it scripts per model
id, so every model id the demo uses gets one function that finds the node by the request's
system prompt (each demo role has its own instructions) and lets a ``ScriptedModel`` pick the
turn (by counting the assistant messages, as it does in process).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from flowgraph.declare.nodes import RoleNode
from flowgraph.graph import Graph
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.models.seam import ModelRequest
from flowgraph.testing import Emulator, ScriptedModel

__all__ = ["DEMO_API_KEY", "EmulatedModel", "start_emulated"]

# Not a secret: the emulator accepts only this key, so a stray client cannot use it by accident.
DEMO_API_KEY = "demo-offline-key-not-secret"
# The demo's one injected failure: the backend's primary model is overloaded on its first call.
OVERLOADED_NODE = "backend"
_STOP_WAIT = 2.0  # seconds an exiting process waits for the emulator thread, at most


class EmulatedModel(AnthropicModel):
    """An ``AnthropicModel`` (real SDK) talking to an in-process emulator it owns.

    Attributes:
        emulator: the running emulator; its ``requests`` log shows what the SDK sent.
        scripted: the ``ScriptedModel`` that picks each reply (its ``script`` may be edited).
    """

    def __init__(self, emulator: Emulator, scripted: ScriptedModel, *, timeout: float) -> None:
        super().__init__(api_key=DEMO_API_KEY, base_url=emulator.base_url, timeout=timeout)
        self.emulator = emulator
        self.scripted = scripted
        # Stop the server when this model is collected, or at interpreter exit at the latest.
        self._finalizer = weakref.finalize(self, _stop, emulator)

    def close(self) -> None:
        """Stop the emulator now (the model cannot be used afterwards)."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"EmulatedModel({self.base_url}, stream={self.stream})"


def start_emulated(graph: Graph, scripted: ScriptedModel, delay: float) -> EmulatedModel:
    """Start an emulator serving ``scripted`` for every role of ``graph``; see the module doc."""
    roles = [n for n in graph.validate().nodes.values() if isinstance(n, RoleNode)]
    by_system: dict[str, str] = {}
    for node in roles:
        other = by_system.setdefault(node.role.instructions, node.name)
        if other != node.name:
            raise ValueError(
                f"nodes {other!r} and {node.name!r} share instructions, so the emulator cannot "
                "tell their requests apart; give each role its own instructions"
            )
    models = dict.fromkeys(m for node in roles for m in (node.model, *node.fallbacks))

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        system = _system_text(body.get("system"))
        node = by_system.get(system)
        if node is None:
            # Raised in the emulator's handler thread: the traceback names the problem.
            raise LookupError(f"no demo role has the system prompt {system[:60]!r}...")
        request = ModelRequest(
            model=str(body["model"]),
            system=system,
            messages=list(body.get("messages") or ()),
            tools=list(body.get("tools") or ()),
            max_tokens=int(body.get("max_tokens") or 4096),
            node=node,
        )
        response = asyncio.run(scripted.request(request))
        return {
            "content": [_fresh(b) for b in response.content],
            "stop_reason": response.stop_reason,
        }

    emulator = Emulator(latency=delay, api_key=DEMO_API_KEY)
    for model in models:
        emulator.script(model, answer)
    overloaded = next((n for n in roles if n.name == OVERLOADED_NODE), None)
    if overloaded is not None:
        emulator.fault("overloaded", model=overloaded.model, call=0)
    emulator.start()
    # A local request never takes long; a stuck one should fail well before the SDK's 10 minutes.
    return EmulatedModel(emulator, scripted, timeout=30.0 + delay)


def _system_text(system: Any) -> str:
    """The system prompt as one string, whether sent as a string or as text blocks."""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "".join(
            str(b.get("text", ""))
            for b in system
            if isinstance(b, Mapping) and b.get("type") == "text"
        )
    return ""


def _fresh(block: Mapping[str, Any]) -> dict[str, Any]:
    """A reply block for the emulator; a tool call drops its scripted id to get a fresh one."""
    if block.get("type") == "tool_use":
        return {k: v for k, v in block.items() if k != "id"}
    return dict(block)


def _stop(emulator: Emulator) -> None:
    """Stop ``emulator`` without ever blocking an exiting process for long."""
    stopper = threading.Thread(target=emulator.stop, name="fg-emulator-stop", daemon=True)
    stopper.start()
    stopper.join(_STOP_WAIT)
