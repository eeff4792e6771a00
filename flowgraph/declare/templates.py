"""Task templates: the one parser of a task's ``{field}`` references, used to check a graph
before it runs and to fill the task when its node runs.

``{feature}`` takes a run input, ``{plan}`` an upstream node's output, ``{plan.endpoints}``
reaches into structured output (dict keys or attributes), ``{items[0]}`` indexes a list; dicts
and lists render as JSON. Literal braces are written doubled: ``{{`` and ``}}``.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from flowgraph.errors import GraphError

__all__ = ["Field", "fields", "render", "roots"]

_STEP = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")


@dataclass(frozen=True, slots=True)
class Field:
    """One ``{...}`` reference: ``{plan.steps[0]}`` has root ``plan`` and path
    ``("steps", "0")``."""

    text: str
    root: str
    path: tuple[str, ...]


@lru_cache(maxsize=4096)
def _parse(template: str) -> tuple[Field, ...] | str:
    """The fields of ``template``, or what is wrong with it (cached: graphs reuse tasks)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"task template is malformed ({exc}); write literal braces as {{{{ and }}}}"
    found: list[Field] = []
    for _, text, _, _ in parsed:
        if text is None:
            continue
        root = re.split(r"[.\[]", text, maxsplit=1)[0]
        if not root:
            return (
                f"task template has an empty or positional field {{{text}}}; name an input or "
                "upstream node, e.g. {feature}"
            )
        rest = text[len(root) :]
        path = tuple(m.group(1) if m.group(1) is not None else m.group(2)
                     for m in _STEP.finditer(rest))  # fmt: skip
        found.append(Field(text, root, path))
    return tuple(found)


def fields(template: str, *, where: str) -> tuple[Field, ...]:
    """Every field ``template`` refers to; a ``GraphError`` naming ``where`` if malformed."""
    parsed = _parse(template)
    if isinstance(parsed, str):
        raise GraphError(f"{where}: {parsed}")
    return parsed


def roots(template: str) -> frozenset[str]:
    """The root names a well-formed ``template`` refers to (``{plan.api}`` -> ``plan``)."""
    parsed = _parse(template)
    return frozenset() if isinstance(parsed, str) else frozenset(f.root for f in parsed)


class _Filler(string.Formatter):
    """Resolves a field's path through mappings, sequences and attributes."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        value = kwargs[root]
        for m in _STEP.finditer(field_name[len(root) :]):
            key = m.group(1) if m.group(1) is not None else m.group(2)
            if isinstance(value, Mapping):
                value = value[key]
            elif m.group(2) is not None and key.isdigit() and isinstance(value, list | tuple):
                value = value[int(key)]
            else:
                value = getattr(value, key)
        return value, root

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2)
        return str(super().format_field(value, format_spec))


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values``; raises ``KeyError``, ``AttributeError``,
    ``IndexError`` or ``TypeError`` when a field cannot be resolved."""
    return _Filler().format(template, **values)
