"""``flowgraph eval``: the three-configuration table, the chart, --json, and resuming after
Ctrl-C without re-running finished tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "eval_advisor.py"

SLOW_SUITE = """
import asyncio
from flowgraph import Graph, ModelResponse, Role, Usage
from flowgraph.evals import Config, Suite, Task

class Slow:
    async def request(self, request):
        await asyncio.sleep(0.4)
        return ModelResponse([{"type": "text", "text": "ok"}], "end_turn", request.model,
                             Usage(10, 2))

def graph(config):
    g = Graph("slow", model=config.model)
    g.node("work", Role("worker", "Work.", advisor=None), "work")
    return g

suite = Suite("slow", graph=graph, tasks=[Task(f"t{i}") for i in range(6)],
              configs=[Config("solo", "haiku")], client=Slow)
"""


def test_eval_prints_the_three_configurations_and_writes_the_chart(
    tmp_path: Path, cli: Any
) -> None:
    out = tmp_path / "out"
    result = cli("eval", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("executor solo", "executor + advisor", "strong solo"):
        assert name in result.stdout
    for column in ("completion", "$/task", "latency p50", "latency p95", "consults/task"):
        assert column in result.stdout
    assert "SCRIPTED" in result.stdout
    assert "30 % rule: executor solo fails 40% of tasks (more than 30 %)" in result.stdout
    chart = out / "eval.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    data = json.loads(cli("eval", str(EXAMPLE), "--out", str(out), "--json").stdout)
    rates = {c["config"]: c["completion_rate"] for c in data["configs"]}
    assert rates == {"executor solo": 0.6, "executor + advisor": 1.0, "strong solo": 1.0,
                     "routed": 1.0}  # fmt: skip
    advised = next(c for c in data["configs"] if c["config"] == "executor + advisor")
    assert advised["consults_per_task"] == pytest.approx(0.4)
    assert advised["advisor_per_task"] > 0 and advised["executor_per_task"] > 0
    assert advised["latency_p95_s"] >= advised["latency_p50_s"] > 0


def test_a_suite_file_without_a_suite_is_one_clear_error(tmp_path: Path, cli: Any) -> None:
    bad = tmp_path / "none.py"
    bad.write_text("x = 1\n")
    result = cli("eval", str(bad))
    assert result.returncode == 2
    assert "defines 0 Suite objects" in result.stderr


@pytest.mark.slow
def test_eval_resumes_after_ctrl_c_without_rerunning_finished_tasks(tmp_path: Path) -> None:
    suite = tmp_path / "slow_suite.py"
    suite.write_text(SLOW_SUITE)
    out = tmp_path / "out"
    exe = [sys.executable, "-c", "from flowgraph.cli import main; main()"]
    command = [*exe, "eval", str(suite), "--out", str(out), "--concurrency", "1"]
    child = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    done = lambda: sorted(out.glob("solo/*/eval.json"))  # noqa: E731
    while len(done()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGINT)
    stdout, _ = child.communicate(timeout=30)
    assert child.returncode == 130 and "finished tasks are kept" in stdout
    finished = {p: p.stat().st_mtime_ns for p in done()}
    assert 2 <= len(finished) < 6
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("kept from an earlier eval") == len(finished)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    data = json.loads((out / "eval.json").read_text())
    assert data["configs"][0]["tasks"] == 6 and data["configs"][0]["completion_rate"] == 1.0
