"""Advisor: the policy of when and how a role's executor may consult a stronger model.

This is declaration data (part of a node's fingerprint); the consults themselves happen in
``flowgraph.agent.consults``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowgraph.errors import GraphError

__all__ = ["CONTEXT_POLICIES", "Advisor", "AdvisorContext", "AdvisorMode"]

AdvisorMode = Literal["native", "emulated", "auto"]
AdvisorContext = Literal["full", "last_turns", "summary"]
CONTEXT_POLICIES = ("full", "last_turns", "summary")


@dataclass(frozen=True)
class Advisor:
    """When and how a role's executor may consult a stronger model.

    Args:
        model: the advisor model (alias or id); must not be weaker than the executor.
        max_uses: consults allowed over the whole node (all its requests).
        max_tokens: the cap on each piece of advice.
        mode: ``"native"``, ``"emulated"`` or ``"auto"``.
        fallbacks: models tried when the advisor is overloaded (emulated consults).
        on_repeated_failure: consult when the same tool call fails this many times in a row.
        on_check_failure: consult when the node's output fails validation or its check.
        before_done: consult before the node declares itself done.
        reserve_final: keep the last use for the before-done review.
        guidance: text added to the executor's instructions on when to consult; ``None`` for
            flowgraph's default, ``""`` for none.
        context: what an emulated consult shows the advisor: ``"full"`` (the whole
            transcript), ``"last_turns"`` (the task plus the last ``context_turns`` turns) or
            ``"summary"`` (the task, a summary of the earlier turns made by ``summary_model``,
            and the last ``context_turns`` turns). See docs/advisor.md for the measurements.
        context_turns: how many recent turns ``last_turns`` and ``summary`` keep.
        max_input_tokens: a cap on an emulated consult's input (~4 characters a token); the
            middle of the transcript is cut to fit. ``None`` for no cap.
        summary_model: the cheap model that writes the ``summary`` policy's summaries.
        warn_context_tokens: native consults re-read the executor's whole context: warn when
            it passes this many tokens (``None``: never).
    """

    model: str = "opus"
    max_uses: int = 3
    max_tokens: int = 700
    mode: AdvisorMode = "auto"
    fallbacks: Sequence[str] = ()
    on_repeated_failure: int | None = None
    on_check_failure: bool = False
    before_done: bool = False
    reserve_final: bool = False
    guidance: str | None = None
    context: AdvisorContext = "last_turns"
    context_turns: int = 6
    max_input_tokens: int | None = None
    summary_model: str = "haiku"
    warn_context_tokens: int | None = 50_000

    def __post_init__(self) -> None:
        where = f"Advisor(model={self.model!r})"
        if self.max_uses < 1:
            raise GraphError(f"{where}: max_uses must be at least 1 (or give the role no advisor)")
        if self.max_tokens < 1:
            raise GraphError(f"{where}: max_tokens must be at least 1")
        if self.mode not in ("native", "emulated", "auto"):
            raise GraphError(f"{where}: mode {self.mode!r} is not native, emulated or auto")
        if self.on_repeated_failure is not None and self.on_repeated_failure < 1:
            raise GraphError(f"{where}: on_repeated_failure must be at least 1 or None")
        if self.reserve_final and not self.before_done:
            raise GraphError(f"{where}: reserve_final needs before_done=True; set both or neither")
        if self.context not in CONTEXT_POLICIES:
            raise GraphError(
                f"{where}: context {self.context!r} is not one of {', '.join(CONTEXT_POLICIES)}"
            )
        if self.context_turns < 1:
            raise GraphError(f"{where}: context_turns must be at least 1")
        if self.max_input_tokens is not None and self.max_input_tokens < 100:
            raise GraphError(f"{where}: max_input_tokens must be at least 100 or None")

    def spec(self) -> dict[str, Any]:
        """The policy as JSON data (part of the node's fingerprint)."""
        return {
            "model": self.model,
            "max_uses": self.max_uses,
            "max_tokens": self.max_tokens,
            "mode": self.mode,
            "fallbacks": list(self.fallbacks),
            "triggers": [self.on_repeated_failure, self.on_check_failure, self.before_done,
                         self.reserve_final],
            "guidance": self.guidance,
        } | self._context_spec()  # fmt: skip

    def _context_spec(self) -> dict[str, Any]:
        """The context policy, when it is not the default (so the fingerprints of nodes that
        keep the default do not change)."""
        spec = {
            "context": self.context,
            "context_turns": self.context_turns,
            "max_input_tokens": self.max_input_tokens,
            "summary_model": self.summary_model,
        }
        default = {"context": "last_turns", "context_turns": 6, "max_input_tokens": None,
                   "summary_model": "haiku"}  # fmt: skip
        return {} if spec == default else {"context_policy": spec}
