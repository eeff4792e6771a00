"""Options that more than one command takes, declared once so their help reads the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Endpoints"]

Endpoints = Annotated[
    Path | None,
    typer.Option(
        envvar="FLOWGRAPH_ENDPOINTS",
        help="A TOML file of named endpoints: URL, the NAMES of the variables holding "
        "credentials, advisor mode, prices (docs/endpoints.md).",
    ),
]
