"""Shared test helpers."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def flowgraph_exe() -> list[str]:
    """The installed `flowgraph` command, as a user would run it."""
    exe = Path(sys.executable).with_name("flowgraph")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from flowgraph.cli import main; main()"]


@dataclass(frozen=True)
class CliResult:
    """What a command printed and returned, like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """The ``flowgraph`` command run in this process through its entry function
    (``flowgraph.cli.invoke``): the same parsing, loading and error handling as the console
    script, without a Python start-up per call, and counted by coverage."""
    from flowgraph.cli import invoke

    # --log-json and -v install a handler on flowgraph's logger: put it back afterwards.
    log = logging.getLogger("flowgraph")
    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "level", log.level)
    monkeypatch.setattr(log, "propagate", log.propagate)
    for key in [k for k in os.environ if k.startswith("ANTHROPIC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")

    def call(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = invoke(list(args))
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return call
