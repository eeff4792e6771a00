"""Env: what a pattern may use of the run executing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from flowgraph.declare.context import Context
from flowgraph.declare.nodes import Work
from flowgraph.ledger.schema import LedgerDoc, NodeRecord

__all__ = ["Env"]


class Env(Protocol):
    """What a pattern may use of the run executing it."""

    @property
    def run_dir(self) -> Path | None: ...

    @property
    def workspace(self) -> Path: ...

    @property
    def doc(self) -> LedgerDoc: ...

    @property
    def max_items(self) -> int | None: ...

    def record(self, name: str) -> NodeRecord | None: ...

    def update(self, name: str, **fields: Any) -> None: ...

    def update_run(self, **fields: Any) -> None: ...

    async def run_unit(
        self, record: str, unit: Work, ctx: Context, *, parent: str, key: str
    ) -> Any:
        """Run a role or step as sub-record ``record`` of ``parent``; a passed record with
        the same definition and ``key`` is returned from the ledger instead of run again."""
        ...
