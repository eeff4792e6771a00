"""RunResult: what a finished (or stopped) run hands back to the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowgraph.errors import NodeError

__all__ = ["RunResult"]


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run.

    Attributes:
        run_id: the run's id.
        status: ``passed``, ``failed``, ``interrupted`` or ``budget_exceeded``.
        outputs: outputs of the nodes that passed, by node name.
        statuses: every node's final status.
        errors: the error of each failed node.
        run_dir: where the ledger is, if the run has one.
        executed: the nodes this call actually ran (the rest were reused or skipped).
    """

    run_id: str
    status: str
    outputs: Mapping[str, Any]
    statuses: Mapping[str, str]
    errors: Mapping[str, str]
    run_dir: Path | None
    executed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every node passed."""
        return self.status == "passed"

    def __getitem__(self, node: str) -> Any:
        """The output of ``node``; raises ``NodeError`` if it did not pass."""
        if node not in self.outputs:
            state = self.statuses.get(node, "unknown")
            raise NodeError(f"node {node!r} has no output: it is {state}")
        return self.outputs[node]

    def raise_for_status(self) -> None:
        """Raise ``NodeError`` naming the failed nodes unless the run passed."""
        if not self.ok:
            failed = "; ".join(f"{n}: {e}" for n, e in self.errors.items()) or self.status
            raise NodeError(f"run {self.run_id} {self.status}: {failed}")
