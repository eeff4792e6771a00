"""What a running node can see: the run input, upstream outputs and where it may write files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Context"]


@dataclass(slots=True)
class Context:
    """Handed to function steps, and to tools that declare a ``Context`` parameter.

    Each node gets its own (not frozen: one is made per node on the hot path, and a frozen
    dataclass costs three times as much to build); changing it changes only that node's view.

    Attributes:
        node: the name of the node being run.
        input: the run input.
        outputs: the outputs of the node's upstream nodes (all ancestors), by node name.
        run_dir: the run directory (holds the ledger); ``None`` for a run without a ledger.
        vars: values a pattern hands its work (``item`` and ``index`` in a map, ``review`` and
            ``round`` in a review loop); task templates may use them.
        workspace: a directory the node may write to: ``run_dir / "workspace"``, or a
            temporary path for a run without a run directory. It is created by whoever first
            writes there (``mkdir(parents=True, exist_ok=True)``).
    """

    node: str
    input: Mapping[str, Any]
    outputs: Mapping[str, Any]
    run_dir: Path | None
    workspace: Path
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def item(self) -> Any:
        """In a map, the item this run of the work is for."""
        return self.vars.get("item")
