"""Statuses: what a node's and a run's status can be, with their predicates, and ``Paused``, the
signal a node raises to end this run without failing.

The ledger stores these as plain strings (``"passed"``); ``NodeStatus`` and ``RunStatus`` are
``StrEnum``s, so they compare equal to those strings and serialize to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["NodeStatus", "Paused", "RunStatus"]


class NodeStatus(StrEnum):
    """Where a node (or a pattern's sub-record) stands."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    WAITING_APPROVAL = "waiting_approval"
    BUDGET_EXCEEDED = "budget_exceeded"
    INCOMPLETE = "incomplete"
    # A route chose another branch: final, neither failed nor pending, and without an output.
    NOT_TAKEN = "not_taken"

    @property
    def is_ok(self) -> bool:
        """It passed: its output feeds its dependents, and a resume reuses it."""
        return self is NodeStatus.PASSED

    @property
    def is_final(self) -> bool:
        """It ended in this run and nothing more happens to it until the run is resumed."""
        return self in _FINAL

    @property
    def is_paused(self) -> bool:
        """It waits, not failed: for a person (a gate) or for the next run (a checklist)."""
        return self in _PAUSED


_FINAL = frozenset(
    {
        NodeStatus.PASSED,
        NodeStatus.FAILED,
        NodeStatus.SKIPPED,
        NodeStatus.BUDGET_EXCEEDED,
        NodeStatus.NOT_TAKEN,
    }
)
_DONE = frozenset({NodeStatus.PASSED, NodeStatus.NOT_TAKEN})
_PAUSED = frozenset({NodeStatus.WAITING_APPROVAL, NodeStatus.INCOMPLETE})


class RunStatus(StrEnum):
    """Where a whole run stands."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    BUDGET_EXCEEDED = "budget_exceeded"
    WAITING_APPROVAL = "waiting_approval"
    INCOMPLETE = "incomplete"

    @classmethod
    def of_nodes(cls, statuses: Iterable[str]) -> RunStatus:
        """The run's status from its nodes' final statuses; a branch a route did not take
        counts as done, so a run whose nodes passed or were not taken passed."""
        found = {NodeStatus(s) for s in set(statuses)}
        if found and found <= _DONE:
            return cls.PASSED
        if NodeStatus.BUDGET_EXCEEDED in found:
            return cls.BUDGET_EXCEEDED
        if found & {NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.INTERRUPTED}:
            return cls.FAILED
        if NodeStatus.WAITING_APPROVAL in found:
            return cls.WAITING_APPROVAL
        return cls.INCOMPLETE  # a checklist with items left for the next run

    @property
    def is_failure(self) -> bool:
        """Whether the run needs fixing; waiting for a person or for the next batch of
        checklist items is not a failure."""
        return self not in (RunStatus.PASSED, RunStatus.WAITING_APPROVAL, RunStatus.INCOMPLETE)


class Paused(Exception):
    """A node that cannot finish in this run and is not failed: it waits for a person (an
    approval gate) or for the next run (a checklist with items left). What depends on it
    stays pending.

    Args:
        status: the node's status, e.g. ``NodeStatus.WAITING_APPROVAL``.
        message: what is awaited, in plain words.
    """

    def __init__(self, status: NodeStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
