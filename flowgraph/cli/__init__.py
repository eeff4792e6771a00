"""The ``flowgraph`` command, composed from the public API (``flowgraph.cli:main``)."""

from flowgraph.cli.app import app, invoke, main

__all__ = ["app", "invoke", "main"]
