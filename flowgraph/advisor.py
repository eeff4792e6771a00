"""Compatibility path: ``Advisor`` is public in ``flowgraph``."""

from flowgraph.agent.consults import Advisor

__all__ = ["Advisor"]
