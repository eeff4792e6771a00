"""Money: prices, the accounting of every call's tokens, and budgets shared across a run.

May import: ``models`` and the layers below it.
"""
