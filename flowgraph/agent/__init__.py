"""Agent: one role node's tool loop and its advisor consults, behind the ``Model`` seam.

May import: ``compile``, ``declare`` and the layers below them.
"""
