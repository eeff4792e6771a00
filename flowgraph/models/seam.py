"""The seam between flowgraph and a model provider.

A ``Model`` is one async call, ``request``, that takes a Messages-API shaped request and returns
content blocks plus usage. Content blocks and messages are plain dicts in the Anthropic Messages
shapes (``{"type": "text", "text": ...}``, ``{"type": "tool_use", ...}``), so the SDK-backed model
drops in without the runtime knowing about HTTP, and a scripted model needs no SDK at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Model", "ModelRequest", "ModelResponse", "Usage"]

Block = dict[str, Any]
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call (or a sum of calls) consumed, as the Messages API reports them.

    ``iterations`` keeps the API's per-iteration entries (``message``, ``advisor_message``,
    ``fallback_message``) so that each can be priced at the model that produced it.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    iterations: tuple[Mapping[str, Any], ...] = ()

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.iterations + other.iterations,
        )

    def to_dict(self) -> dict[str, int]:
        """The token counts as a JSON-ready dict (iterations are kept with the transcript)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Read a Messages-API ``usage`` object (missing or null counts are 0)."""
        return cls(
            int(data.get("input_tokens") or 0),
            int(data.get("output_tokens") or 0),
            int(data.get("cache_creation_input_tokens") or 0),
            int(data.get("cache_read_input_tokens") or 0),
            tuple(data.get("iterations") or ()),
        )


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One Messages-API request.

    Attributes:
        model: the full model id to call (aliases are resolved before this point).
        system: the system prompt, as text or as text blocks (to carry cache breakpoints).
        messages: the conversation, as Messages-API message params.
        tools: tool params (client tools and server tools such as the advisor).
        max_tokens: the output cap for this turn.
        node: the graph node that asks; for logs and scripted models, never sent to a provider.
        betas: beta feature names for the ``anthropic-beta`` header.
        extra: further body fields passed through unchanged (``fallbacks``, ``metadata``...).
        purpose: ``"executor"`` for the node's own turns, ``"advisor"`` for a consult flowgraph
            makes itself; like ``node``, never sent.
        on_text: for a model that streams: called with ``""`` when the first content block
            starts (the time to first token) and then with each text delta; never sent.
    """

    model: str
    system: str | Sequence[Block]
    messages: Sequence[Message]
    tools: Sequence[Block] = ()
    max_tokens: int = 4096
    node: str = ""
    betas: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    purpose: str = "executor"
    on_text: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """One Messages-API response: the assistant's content blocks, why it stopped, and usage."""

    content: Sequence[Block]
    stop_reason: str
    model: str
    usage: Usage = Usage()
    id: str = ""

    @property
    def text(self) -> str:
        """The text blocks joined, as a person would read the answer."""
        return "".join(b.get("text", "") for b in self.content if b.get("type") == "text")

    @property
    def tool_uses(self) -> list[Block]:
        """The client tool calls the model asked for, in order."""
        return [b for b in self.content if b.get("type") == "tool_use"]


@runtime_checkable
class Model(Protocol):
    """What flowgraph needs from a provider: one async Messages-API call.

    Implementations raise ``flowgraph.errors.TransientModelError`` for failures worth a retry
    or a fallback (overload, 5xx, rate limit, connection) and ``ModelError`` for the rest.
    """

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one request and return the whole response."""
        ...
