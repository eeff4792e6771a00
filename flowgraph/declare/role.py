"""Role: a reusable specialist — instructions, model, tools, output schema and limits."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flowgraph.declare.advisor import Advisor
from flowgraph.declare.agentfile import read_agent_file
from flowgraph.declare.aliases import INHERIT
from flowgraph.declare.identity import function_identity
from flowgraph.declare.tools import Tool
from flowgraph.errors import GraphError
from flowgraph.models.endpoints import is_endpoint_name
from flowgraph.models.router import MAX_FALLBACKS
from flowgraph.tools.mcp import MCPServer

__all__ = ["Role"]


@dataclass(frozen=True)
class Role:
    """A specialist that a graph node runs as an agent tool loop.

    Args:
        name: what the role is called (``"backend"``).
        instructions: the system prompt.
        model: ``"opus"``, ``"sonnet"``, ``"haiku"``, a full model id, or ``"inherit"`` (the
            graph's default).
        tools: functions (or ``Tool``) the model may call.
        output: a pydantic model the final answer must validate against; ``None`` for free text.
        max_turns: model turns before the node gives up.
        timeout: seconds the whole node may take; ``None`` for no limit.
        max_tokens: the output cap per model turn.
        retries: how many times a transient failure of the node is retried, with backoff.
        output_retries: how many times an invalid structured output is sent back to be fixed.
        fallbacks: models tried in order when the current one is overloaded (at most 3).
        server_fallbacks: models the API itself tries when the requested model declines for
            policy reasons (a refusal); sent as the beta ``fallbacks`` request field.
        max_cost_usd: the most this role's node may spend, over all its attempts.
        endpoint: the named endpoint (see ``flowgraph.models.endpoints``) the role's model and
            its fallbacks are sent to, unless one names its own (``"other:model"``); None: the
            default endpoint.
        cache: place prompt-cache breakpoints on the instructions, tools and conversation.
        advisor: an ``Advisor`` the executor may consult, ``None`` for none, or ``"inherit"``
            (the graph's default advisor, if it has one).
        check: ``async def check(output, ctx) -> str | None``: a problem to send back to the
            model (counted against ``output_retries``), or None when the output is good.
        mcp_servers: MCP servers whose tools the role may call (``mcp__<server>__<tool>``);
            started when the run starts, stopped when it ends.
        approve: tool names whose every call waits for a person's approval (``["Bash"]``;
            ``["*"]`` for all tools).
    """

    name: str
    instructions: str
    model: str = INHERIT
    tools: Sequence[Tool | Callable[..., Any]] = ()
    output: type[BaseModel] | None = None
    max_turns: int = 20
    timeout: float | None = None
    max_tokens: int = 4096
    retries: int = 2
    output_retries: int = 2
    fallbacks: Sequence[str] = ()
    server_fallbacks: Sequence[str] = ()
    max_cost_usd: float | None = None
    cache: bool = True
    advisor: Advisor | str | None = INHERIT
    check: Callable[[Any, Any], Awaitable[str | None]] | None = None
    mcp_servers: Sequence[MCPServer] = ()
    approve: Sequence[str] = ()
    endpoint: str | None = None
    _tools: tuple[Tool, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"role {self.name!r}"
        if not self.name:
            raise GraphError("a role needs a name, e.g. Role(name='backend', instructions=...)")
        if self.max_turns < 1:
            raise GraphError(f"{where}: max_turns must be at least 1, got {self.max_turns}")
        if self.timeout is not None and self.timeout <= 0:
            raise GraphError(f"{where}: timeout must be positive seconds or None")
        if isinstance(self.advisor, str) and self.advisor != INHERIT:
            raise GraphError(f"{where}: advisor must be an Advisor, None or 'inherit'")
        if self.check is not None and not inspect.iscoroutinefunction(self.check):
            raise GraphError(f"{where}: check must be `async def check(output, ctx)`")
        if self.max_cost_usd is not None and self.max_cost_usd <= 0:
            raise GraphError(f"{where}: max_cost_usd must be a positive amount of USD or None")
        if len(self.fallbacks) > MAX_FALLBACKS:
            raise GraphError(
                f"{where}: {len(self.fallbacks)} fallbacks given, at most {MAX_FALLBACKS} "
                "are allowed; keep the ones you trust most"
            )
        if self.endpoint is not None and not is_endpoint_name(self.endpoint):
            raise GraphError(
                f"{where}: endpoint {self.endpoint!r} is not an endpoint name; use a short word "
                "such as 'gateway' (no ':', '/' or '.')"
            )
        if self.output is not None and not (
            isinstance(self.output, type) and issubclass(self.output, BaseModel)
        ):
            raise GraphError(f"{where}: output must be a pydantic BaseModel class")
        tools = tuple(t if isinstance(t, Tool) else Tool(t) for t in self.tools)
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise GraphError(f"{where}: tool names must be unique; {', '.join(dupes)} repeat")
        object.__setattr__(self, "_tools", tools)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Role:
        """A role from a Claude Code agent file (``.claude/agents/<role>.md``): its front
        matter's name, tools and model, its body as the instructions. ``overrides`` set any
        other field (``Role.from_file(p, max_turns=40, output=Plan)``)."""
        agent = read_agent_file(path)
        fields = {"name": agent.name, "instructions": agent.prompt, "tools": agent.tools,
                  "model": agent.model, **overrides}  # fmt: skip
        return cls(**fields)

    @property
    def tool_list(self) -> tuple[Tool, ...]:
        """The role's tools, each wrapped as a ``Tool``."""
        return self._tools

    def spec(self) -> dict[str, Any]:
        """Everything that defines what this role does, as JSON data (for fingerprints): its
        tools and its check by their source too, so editing one re-runs the role's nodes."""
        return {
            "name": self.name,
            "instructions": self.instructions,
            "model": self.model,
            "tools": [t.spec() for t in self._tools],
            "output": self.output.model_json_schema() if self.output else None,
            "max_turns": self.max_turns,
            "max_tokens": self.max_tokens,
            "output_retries": self.output_retries,
            "fallbacks": list(self.fallbacks),
            "server_fallbacks": list(self.server_fallbacks),
            "advisor": self.advisor.spec() if isinstance(self.advisor, Advisor) else self.advisor,
            "check": function_identity(self.check) if self.check else None,
            **({"mcp": [s.spec() for s in self.mcp_servers]} if self.mcp_servers else {}),
            **({"approve": sorted(self.approve)} if self.approve else {}),
            **({"endpoint": self.endpoint} if self.endpoint else {}),
        }
