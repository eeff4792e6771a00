"""Taking over a run whose ledger an older flowgraph wrote: what its schema lacks, made good
once, so that the snapshots this process writes keep every promise of the current schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowgraph.ledger.schema import LedgerDoc

__all__ = ["anchor_conversations"]


def anchor_conversations(doc: LedgerDoc, note_turn: Callable[[str, dict[str, Any]], None]) -> None:
    """Schema 1 kept a stopped attempt's steps in ``ledger.json``; from schema 2 on a snapshot
    keeps only where they begin in the journal. Journal such steps once more (``note_turn``),
    so the next snapshot can point at them: a second crash loses no turn either."""
    for name, record in doc.nodes.items():
        if record.conversation and record.conversation_at is None:
            steps = record.conversation
            if steps[0]["k"] != "task":  # journaled before attempts had a head: unknown
                steps = [{"k": "task", "attempt": record.attempts, "content": ""}, *steps]
            for step in steps:
                note_turn(name, step)
