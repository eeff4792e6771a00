"""Compatibility path: ``Advisor`` is public in ``flowgraph``."""

from flowgraph.declare.advisor import Advisor

__all__ = ["Advisor"]
