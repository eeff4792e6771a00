"""Options that more than one command takes, declared once so their help reads the same."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from flowgraph.execute.options import RunOptions
from flowgraph.graph import Graph
from flowgraph.models.endpoint_file import EndpointFile

__all__ = ["Endpoints", "with_endpoints_file"]

Endpoints = Annotated[
    Path | None,
    typer.Option(
        envvar="FLOWGRAPH_ENDPOINTS",
        help="A TOML file of named endpoints: URL, the NAMES of the variables holding "
        "credentials, advisor mode, prices (docs/endpoints.md).",
    ),
]


def with_endpoints_file(options: RunOptions, path: Path | None, graph: Graph) -> RunOptions:
    """The options with the endpoints file's client (it wins over the graph's own) and its
    prices laid over the price table in force."""
    if path is None:
        return options
    given = dataclasses.replace(
        options, endpoints=EndpointFile.from_file(path), pricing=options.pricing or graph.pricing
    )
    return given.with_endpoints()
