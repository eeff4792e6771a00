"""Compatibility path: ``AnthropicModel`` lives in ``flowgraph.models.anthropic``."""

from flowgraph.models.anthropic import AnthropicModel

__all__ = ["AnthropicModel"]
