"""Model names: the one table that maps short aliases to full model ids.

Nodes name models the way Claude Code subagents do: ``"opus"``, ``"sonnet"``, ``"haiku"``,
``"inherit"`` (take the graph's default) or a full id such as ``"claude-sonnet-4-6"``. Users can
point an alias elsewhere with ``set_alias`` (for example at a gateway's model name).
"""

from __future__ import annotations

import re

from flowgraph.errors import GraphError

__all__ = ["INHERIT", "MODEL_ALIASES", "resolve_model", "set_alias", "strength"]

INHERIT = "inherit"

MODEL_ALIASES: dict[str, str] = {
    "opus": "claude-opus-5-5",
    "sonnet": "claude-sonnet-5-5",
    "haiku": "claude-haiku-5-5",
}
"""The short names a role's ``model`` may use, mapped to full model ids. Change an entry with
``set_alias`` (e.g. to point ``"sonnet"`` at a gateway's model name); ``"inherit"`` is not an
alias but takes the graph's default model."""

# Relative strength by family, used to refuse an advisor weaker than its executor.
_FAMILY_RANK = {"haiku": 1, "sonnet": 2, "opus": 3}

# A full id has a separator; a bare word is taken as an alias and must be one we know.
_FULL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*[-./:@][A-Za-z0-9._:/@-]*$")


def set_alias(alias: str, model_id: str) -> None:
    """Point ``alias`` at ``model_id`` for every graph built after this call."""
    MODEL_ALIASES[alias] = model_id


def resolve_model(name: str, *, where: str) -> str:
    """Turn an alias or full id into a full id, or raise a ``GraphError`` that says how to fix it.

    Args:
        name: what the user wrote.
        where: the place to name in the error, e.g. ``node "api"``.
    """
    if name in MODEL_ALIASES:
        return MODEL_ALIASES[name]
    if _FULL_ID.match(name):
        return name
    known = ", ".join([*MODEL_ALIASES, INHERIT])
    raise GraphError(
        f"{where} uses unknown model {name!r}; use one of {known} "
        f"or a full model id such as claude-sonnet-4-6"
    )


def strength(model_id: str) -> int | None:
    """1 for haiku, 2 for sonnet, 3 for opus families; None when the id names no known family."""
    for family, rank in _FAMILY_RANK.items():
        if family in model_id:
            return rank
    return None
