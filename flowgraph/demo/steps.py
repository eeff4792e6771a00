"""The demo's function steps: set up the sample project, and really run its tests.

These are deterministic Python, not model turns: ``prepare`` copies the bundled sample project
into the run's workspace, ``run_tests`` runs that project's tests (whatever the roles wrote) in a
child Python process and fails the node when any test fails, so the roles after it never review
code that does not work.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from flowgraph.declare.context import Context
from flowgraph.errors import NodeError

__all__ = ["SAMPLE_PROJECT", "TESTS_TIMEOUT", "prepare", "run_tests"]

# Bundled as package data (see pyproject's package-data); flowgraph is installed as plain files,
# so the directory is a real path that copytree can read.
SAMPLE_PROJECT = Path(__file__).parent / "sample_project"
TESTS_TIMEOUT = 60.0
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


async def prepare(ctx: Context) -> dict[str, Any]:
    """Copy the sample project into ``ctx.workspace``, keeping any file already there.

    Files that exist are never overwritten, so running this again (a resumed or repeated run)
    cannot undo what the roles wrote.
    """
    workspace = ctx.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []

    def copy_if_missing(src: str, dst: str) -> str:
        if not Path(dst).exists():
            shutil.copy2(src, dst)
            copied.append(Path(dst).relative_to(workspace).as_posix())
        return dst

    shutil.copytree(
        SAMPLE_PROJECT, workspace, ignore=_SKIP, copy_function=copy_if_missing, dirs_exist_ok=True
    )
    files = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*") if p.is_file())
    return {"workspace": str(workspace), "copied": sorted(copied), "files": files}


async def run_tests(ctx: Context) -> dict[str, Any]:
    """Run the workspace project's tests in a child process and report the counts.

    Returns:
        ``{"passed": n, "failed": m, "output": text}``.

    Raises:
        NodeError: a test failed, none ran, or the runner itself broke; the message carries
            the runner's output so the ledger shows why.
    """
    runner = ctx.workspace / "run_tests.py"
    if not runner.is_file():
        raise NodeError(f"no test runner at {runner}; the prepare step should have copied it")
    # -I: ignore PYTHONPATH and user site-packages, so only the workspace's code is tested;
    # -B: write no __pycache__ into the workspace.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-B",
        str(runner),
        cwd=ctx.workspace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(TESTS_TIMEOUT):
            raw, _ = await proc.communicate()
    finally:
        # On a timeout or a cancelled run, the child must not outlive the node.
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = raw.decode(errors="replace")
    counts = _summary(output)
    if counts is None:
        raise NodeError(f"the test runner exited {proc.returncode} without a summary:\n{output}")
    passed, failed = counts
    if failed or not passed or proc.returncode:
        raise NodeError(f"tests failed: {passed} passed, {failed} failed\n{output}")
    return {"passed": passed, "failed": failed, "output": output}


def _summary(output: str) -> tuple[int, int] | None:
    """The runner's last line, ``{"passed": n, "failed": m}``, as numbers."""
    lines = output.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
        return (int(data["passed"]), int(data["failed"])) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
