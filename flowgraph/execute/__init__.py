"""Execute: one run of a validated graph — run options, opening the ledger, the scheduler, the
recorder that writes the ledger and emits events, the model-call path, and the run handle.

May import: ``patterns``, ``agent``, ``compile`` and every layer below them.
"""
