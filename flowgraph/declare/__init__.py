"""Declare: what a graph is made of — roles, tools, advisors, node kinds, templates and names.

Everything here is data a user builds; nothing runs. May import: ``money``, ``models`` (for
shared limits), ``ledger`` and the foundation modules (``errors``, ``events``, ``clock``,
``logs``, ``status``).
"""
