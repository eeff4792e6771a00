"""House rules that a reviewer would otherwise check by hand: lint, format, types, the public
API, and where the SDK may be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flowgraph

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_ruff_lint_and_format_are_clean() -> None:
    lint = run("ruff", "check", "flowgraph", "tests", "examples", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "flowgraph", "tests", "examples", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_api_is_exactly_all() -> None:
    public = {n for n in dir(flowgraph) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(flowgraph, n)).__name__ == "module"}
    assert set(flowgraph.__all__) == public - modules
    assert len(flowgraph.__all__) == len(set(flowgraph.__all__))


def test_the_sdk_is_imported_in_one_module_only() -> None:
    importers = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "flowgraph").rglob("*.py")
        if any(
            line.strip().startswith(("import anthropic", "from anthropic"))
            for line in p.read_text().splitlines()
        )
    ]
    assert importers == ["flowgraph/models/anthropic.py"]


def test_import_flowgraph_loads_neither_the_sdk_nor_networkx() -> None:
    code = (
        "import sys, flowgraph; print([m for m in ('anthropic', 'networkx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
