"""A full disk never destroys a good ledger: a run under a file-size limit (RLIMIT_FSIZE in a
child process, as `prlimit --fsize` does) stops with one line, leaves a ledger `status` reads,
and `resume` finishes it once the limit is lifted."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult

from flowgraph import Ledger

GRAPH = """
from flowgraph import Graph

graph = Graph("fill")
previous = None
for i in range(120):
    async def step(ctx, i=i):
        return {"i": i, "text": "x" * 600}
    graph.node(f"s{i}", step, after=[previous] if previous else [])
    previous = f"s{i}"
"""


def _flowgraph(*args: str, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code = "import sys; from flowgraph.cli import main; sys.argv[0] = 'flowgraph'; main()"
    # Coverage's own data file would hit the limit too: the capped child is not measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, preexec_fn=cap, env=env,
    )  # fmt: skip


# Ten limits, from one that stops the run in its first snapshots to one near its end: each
# cuts a different write (the journal, the snapshot, its temp file) at a different place.
LIMITS = [3_000, 6_000, 11_000, 16_000, 20_000, 26_000, 30_000, 37_000, 45_000, 56_000]


@pytest.mark.slow
@pytest.mark.parametrize("limit", LIMITS)
def test_a_run_under_a_file_size_limit_leaves_a_good_ledger_and_resumes(
    tmp_path: Path, limit: int, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "fill.py").write_text(GRAPH)
    run_dir = tmp_path / "run"
    capped = _flowgraph("run", "fill.py", "--run-dir", str(run_dir), cwd=tmp_path, limit=limit)
    assert capped.returncode == 2, capped.stdout + capped.stderr
    lines = [line for line in capped.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: could not write"), capped.stderr
    assert "Traceback" not in capped.stderr and "flowgraph resume" in lines[0]

    doc = Ledger.read(run_dir)  # readable, however far the run got
    passed_before = [n for n, r in doc.nodes.items() if r.status == "passed"]
    assert not list(run_dir.glob("*.tmp"))
    # Once the limit is lifted (in this process: it never had one), status and resume.
    status = cli("status", str(run_dir), cwd=tmp_path)
    assert status.returncode in (0, 1), status.stderr
    assert "Traceback" not in status.stderr

    resumed = cli("resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = Ledger.read(run_dir)
    assert final.status == "passed"
    assert all(r.status == "passed" for r in final.nodes.values())
    assert final.nodes["s119"].attempts == 1
    # what had passed under the limit was not run again
    assert all(final.nodes[n].attempts == 1 for n in passed_before)
    assert json.loads((run_dir / "ledger.json").read_text())["status"] == "passed"
