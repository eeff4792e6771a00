"""Claude Code agent files (``.claude/agents/<role>.md``): YAML front matter (``name``,
``description``, ``tools``, ``model``) over a body that is the role's prompt.

Front-matter tool names map onto flowgraph's built-in tools; an unknown one is refused with the
list of known ones. ``model: inherit`` (or no model) takes ``CLAUDE_CODE_SUBAGENT_MODEL`` when it
is set, else the graph's default, as Claude Code does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowgraph.declare.aliases import INHERIT
from flowgraph.errors import GraphError
from flowgraph.tools import BUILTIN

__all__ = ["SUBAGENT_MODEL_ENV", "AgentFile", "read_agent_file"]

SUBAGENT_MODEL_ENV = "CLAUDE_CODE_SUBAGENT_MODEL"


@dataclass(frozen=True, slots=True)
class AgentFile:
    """What an agent file says, with its tools resolved and its model chosen."""

    name: str
    description: str
    prompt: str
    tools: tuple[Callable[..., Any], ...]
    model: str


def read_agent_file(path: str | Path) -> AgentFile:
    """Parse ``path``; every mistake is a ``GraphError`` naming the file and the fix."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphError(
            f"cannot read agent file {file} ({exc.strerror}); check the path"
        ) from None
    meta, body = _split(file, text)
    name = str(meta.get("name") or file.stem)
    return AgentFile(
        name=name,
        description=str(meta.get("description") or ""),
        prompt=body.strip(),
        tools=_tools(file, meta.get("tools")),
        model=_model(meta.get("model")),
    )


def _split(file: Path, text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        raise GraphError(
            f"{file} has no front matter; start it with '---', then 'name:', 'description:' "
            "and 'tools:' lines, then '---' and the prompt"
        )
    _, head, body = [*text.split("---", 2), "", ""][:3]
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise GraphError(f"{file}: its front matter is not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise GraphError(f"{file}: the front matter must be 'key: value' lines")
    return meta, body


def _tools(file: Path, given: Any) -> tuple[Callable[..., Any], ...]:
    if given is None:  # no tools line: Claude Code gives the agent every tool
        return tuple(BUILTIN.values())
    names = [n.strip() for n in given.split(",")] if isinstance(given, str) else list(given)
    unknown = [n for n in names if n and n not in BUILTIN]
    if unknown:
        raise GraphError(
            f"{file}: unknown tool {', '.join(map(str, unknown))}; the tools flowgraph has "
            f"built in are: {', '.join(BUILTIN)} (give others to Role(tools=...) in Python)"
        )
    return tuple(BUILTIN[n] for n in dict.fromkeys(names) if n)


def _model(given: Any) -> str:
    model = str(given or INHERIT).strip()
    if model == INHERIT:
        return os.environ.get(SUBAGENT_MODEL_ENV) or INHERIT
    return model
