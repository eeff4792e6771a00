"""What the turn journal keeps of a model request, and the request's metadata read back whole.

A role node's ``a`` step (see ``agent.loop``) already says its turn, stop reason and which
model and endpoint served it; its ``meta`` adds only the rest, so no step repeats itself.
"""

from __future__ import annotations

from typing import Any

from flowgraph.models.router import Served
from flowgraph.models.seam import ModelRequest

__all__ = ["request_of", "turn_meta"]


def turn_meta(request: ModelRequest, served: Served) -> dict[str, Any]:
    """A turn's request metadata for its journal delta: only what the delta does not already
    say (its turn, stop reason and ``served`` entry). Empty ``betas`` and ``extra`` and a
    chain that served at its first try are left out; ``request_of`` puts them back."""
    response = served.response
    meta: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "response_id": response.id,
        "usage": {**response.usage.to_dict(), "iterations": list(response.usage.iterations)},
    }
    if request.betas:
        meta["betas"] = list(request.betas)
    if request.extra:
        meta["extra"] = sorted(request.extra)
    attempts = served.attempts
    if len(attempts) != 1 or attempts[0].outcome != "served" or attempts[0].model != request.model:
        meta["attempts"] = [
            {"model": a.model, "outcome": a.outcome, "reason": a.reason} for a in attempts
        ]
    return meta


def request_of(step: dict[str, Any]) -> dict[str, Any]:
    """The metadata of the request behind a journaled answer (an ``a`` step), whole: turn,
    model asked, max_tokens, betas, extra, served_by, attempts, response_id, stop_reason and
    usage. Steps written before the journal left the repeats out already hold them all."""
    meta = step["meta"]
    served = step.get("served") or {}
    model = meta.get("model")
    return {
        "turn": step["turn"],
        "model": model,
        "max_tokens": meta.get("max_tokens"),
        "betas": meta.get("betas", []),
        "extra": meta.get("extra", []),
        "served_by": meta.get("served_by", served.get("model")),
        "attempts": meta.get("attempts", [{"model": model, "outcome": "served", "reason": ""}]),
        "response_id": meta.get("response_id"),
        "stop_reason": step.get("stop"),
        "usage": meta.get("usage"),
    }
