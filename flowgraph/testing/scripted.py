"""ScriptedModel: an in-process ``Model`` that replays scripted turns, for tests and demos.

Scripts are keyed by node name (or by model id). A node's turn ``k`` gets the script's ``k``-th
reply, counted from the conversation it is sent, so a node that is re-run starts its script
again, exactly as a real model would see a fresh conversation. A consult flowgraph makes for a
node's advisor looks up ``"<node>:advisor"``, then the advisor's model id, then ``"advisor"``;
the node's ``k``-th consult gets the ``k``-th reply. A reply is a string (the final
text), a ``ModelResponse`` (built with ``text``/``tool_call``), an exception to raise, or a
function of the request returning one of those.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowgraph.errors import ModelError
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage

__all__ = ["ScriptedModel", "text", "tool_call"]

Reply = str | ModelResponse | BaseException | Callable[[ModelRequest], Any]
_ids = itertools.count(1)


def _tokens(value: Any) -> int:
    """A deterministic stand-in for a tokenizer: about four characters a token."""
    return max(1, len(json.dumps(value, default=str)) // 4)


def text(body: str) -> ModelResponse:
    """A final answer: one text block, ``end_turn``."""
    return ModelResponse([{"type": "text", "text": body}], "end_turn", "")


def tool_call(name: str, /, *, say: str = "", **arguments: Any) -> ModelResponse:
    """A turn that calls tool ``name`` with ``arguments`` (and optionally says ``say`` first)."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": say}] if say else []
    blocks.append(
        {"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": name, "input": arguments}
    )
    return ModelResponse(blocks, "tool_use", "")


class ScriptedModel:
    """A ``Model`` that answers from a script instead of a provider.

    Args:
        script: replies by node name or model id; a sequence gives turn 1, 2, ...; a function
            gets the request.
        default: the reply for a node the script does not name (``None``: raise).
        delay: seconds to wait before each reply, so a person can watch (and interrupt) a run.

    Attributes:
        requests: every request received, in order.
    """

    def __init__(
        self,
        script: Mapping[str, Sequence[Reply] | Callable[[ModelRequest], Any]] | None = None,
        *,
        default: Reply | None = "done",
        delay: float = 0.0,
    ) -> None:
        self.script = dict(script or {})
        self.default = default
        self.delay = delay
        self.requests: list[ModelRequest] = []
        self._consults: dict[str, int] = {}

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        # Always yield, as a network call would: with no delay, parallel nodes would
        # otherwise run one after another and hide ordering bugs.
        await asyncio.sleep(self.delay)
        reply = self._pick(request)
        while callable(reply) and not isinstance(reply, ModelResponse | BaseException):
            reply = reply(request)
        if isinstance(reply, BaseException):
            raise reply
        response = text(reply) if isinstance(reply, str) else reply
        if not isinstance(response, ModelResponse):
            raise ModelError(
                f"script for {request.node!r} gave {type(reply).__name__}, not a reply"
            )
        usage = Usage(
            input_tokens=_tokens([request.system, list(request.messages), list(request.tools)]),
            output_tokens=_tokens(list(response.content)),
        )
        return ModelResponse(
            response.content, response.stop_reason, request.model, usage, f"msg_{next(_ids):06d}"
        )

    def _pick(self, request: ModelRequest) -> Reply:
        keys: tuple[str, ...]
        if request.purpose == "advisor":  # a consult: the advisor's script, not the node's
            keys = (f"{request.node}:advisor", request.model, "advisor")
        else:
            keys = (request.node, request.model)
        entry = next((self.script[k] for k in keys if k in self.script), None)
        if entry is None:
            if self.default is None:
                raise ModelError(
                    f"scripted model has no script for node {request.node!r}; add it to the script"
                )
            return self.default
        if callable(entry):
            return entry
        if request.purpose == "advisor":
            turn = self._consults.get(request.node, 0)
            self._consults[request.node] = turn + 1
        else:
            turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        if turn >= len(entry):
            return entry[-1] if entry else "done"
        return entry[turn]
