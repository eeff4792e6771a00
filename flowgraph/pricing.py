"""Compatibility path: prices live in ``flowgraph.money.pricing`` (``Pricing`` and
``ModelPrice`` are public in ``flowgraph``)."""

from flowgraph.money.pricing import DEFAULT_PRICING, Cost, ModelPrice, Pricing

__all__ = ["DEFAULT_PRICING", "Cost", "ModelPrice", "Pricing"]
