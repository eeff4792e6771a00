"""Loading a directory of Claude Code agent files (``.claude/agents/``) as roles by name."""

from __future__ import annotations

from pathlib import Path

from flowgraph.declare.role import Role
from flowgraph.errors import GraphError

__all__ = ["load_agents"]


def load_agents(directory: str | Path = ".claude/agents") -> dict[str, Role]:
    """Every ``*.md`` agent file in ``directory`` as a ``Role``, keyed by its name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise GraphError(f"no agents directory {folder}; it should hold <role>.md agent files")
    roles: dict[str, Role] = {}
    for file in sorted(folder.glob("*.md")):
        role = Role.from_file(file)
        if role.name in roles:
            raise GraphError(f"{file}: agent name {role.name!r} is used by another file too")
        roles[role.name] = role
    if not roles:
        raise GraphError(f"{folder} holds no agent files (*.md)")
    return roles
