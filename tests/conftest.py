"""Shared test helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def flowgraph_exe() -> list[str]:
    """The installed `flowgraph` command, as a user would run it."""
    exe = Path(sys.executable).with_name("flowgraph")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from flowgraph.cli.app import main; main()"]
