"""Ledger: the run directory's durable record — the store (the single writer), its schema, the
reader that refuses what it cannot trust, and the inbox people write to.

May import: the foundation modules only. It knows nothing of graphs or models.
"""

from flowgraph.ledger.reader import JOURNAL_FILE, LEDGER_FILE
from flowgraph.ledger.schema import SCHEMA_VERSION, Feature, LedgerDoc, NodeRecord
from flowgraph.ledger.store import Ledger

__all__ = ["JOURNAL_FILE", "LEDGER_FILE", "SCHEMA_VERSION", "Feature", "Ledger", "LedgerDoc",
           "NodeRecord"]  # fmt: skip
