"""Compatibility path: the ``Model`` seam lives in ``flowgraph.models.seam`` (and is public in
``flowgraph``)."""

from flowgraph.models.seam import Model, ModelRequest, ModelResponse, Usage

__all__ = ["Model", "ModelRequest", "ModelResponse", "Usage"]
