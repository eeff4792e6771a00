"""Routing: a classifier picks a branch (``route``) or the model a role runs on
(``routed``); what it did not pick is recorded ``not_taken``.

The classifier runs as the sub-record ``<node>.classify``, so its answer is kept in the ledger:
a resume finds it passed and does not ask again, even if the node stopped after it. The
chosen label is the node's ``route`` field. Which graph nodes a route leaves out is the
scheduler's business (``RouteNode.not_chosen``); a routed role node records its unchosen
choices itself.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from flowgraph.declare.context import Context
from flowgraph.declare.names import local_of, scoped
from flowgraph.declare.nodes import RoutedNode, RouteNode, Work
from flowgraph.errors import NodeError
from flowgraph.status import NodeStatus

if TYPE_CHECKING:
    from flowgraph.patterns.env import Env

__all__ = ["chosen_label", "run_route", "run_routed"]

_TRIM = " \t\r\n\"'`.*"


async def run_route(node: RouteNode, ctx: Context, env: Env) -> dict[str, Any]:
    """Ask the classifier (or read its recorded answer) and record the chosen branch."""
    label = await _choose(node.name, node.classifier, node.labels, ctx, env)
    return {"route": label}


async def run_routed(node: RoutedNode, ctx: Context, env: Env) -> Any:
    """Pick the model with the classifier, run the role on it; the others are not taken."""
    label = await _choose(node.name, node.classifier, node.labels, ctx, env)
    chosen = None
    for choice in node.choices:
        record = scoped(node.name, local_of(choice.name))
        if local_of(choice.name) == label:
            chosen = dataclasses.replace(choice, name=record)
            continue
        env.update(record, status=NodeStatus.NOT_TAKEN, kind=choice.kind, parent=node.name,
                   role=choice.role_name, model=choice.model, error=None)  # fmt: skip
    assert chosen is not None  # _choose returns one of the labels
    own = dataclasses.replace(ctx, node=chosen.name)
    return await env.run_unit(chosen.name, chosen, own, parent=node.name, key=label)


async def _choose(
    name: str, classifier: Work, labels: tuple[str, ...], ctx: Context, env: Env
) -> str:
    record = scoped(name, "classify")
    asked = dataclasses.replace(classifier, name=record)
    own = dataclasses.replace(ctx, node=record)
    answer = await env.run_unit(record, asked, own, parent=name, key="classify")
    label = chosen_label(answer, labels)
    if label is None:
        shown = answer if isinstance(answer, str | int | float | None) else type(answer).__name__
        raise NodeError(
            f"route {name!r}: the classifier chose {str(shown)[:80]!r}, which is not a "
            f"branch; branches are: {', '.join(labels)}; make it answer with one of them"
        )
    env.update(name, route=label)
    return label


def chosen_label(answer: Any, labels: tuple[str, ...]) -> str | None:
    """The label a classifier's answer names: the text itself (quotes, a final period and
    case aside) or a ``route`` field; ``None`` when it names none of ``labels``."""
    if isinstance(answer, dict):
        answer = answer.get("route")
    if not isinstance(answer, str):
        return None
    text = answer.strip(_TRIM)
    if text in labels:
        return text
    folded = [label for label in labels if label.lower() == text.lower()]
    return folded[0] if len(folded) == 1 else None
