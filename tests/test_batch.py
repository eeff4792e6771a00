"""`flowgraph batch`: one run per input line, each in its own run directory, resumable, with a
summary — on this machine (no Ray needed)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowgraph import Ledger

GRAPH = Path(__file__).parent / "ray_cluster" / "graphs.py"


def inputs_file(path: Path, count: int, log: Path) -> Path:
    path.write_text("".join(json.dumps({"n": n, "log": str(log)}) + "\n" for n in range(count)))
    return path


def test_batch_runs_each_input_line_in_its_own_run_dir(cli, tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    inputs = inputs_file(tmp_path / "in.jsonl", 3, log)
    runs = tmp_path / "runs"
    done = cli("batch", f"{GRAPH}:batch", "--inputs", str(inputs), "--runs-dir", str(runs))
    assert done.returncode == 0, done.stderr
    dirs = sorted(p.name for p in runs.iterdir())
    assert [d.split("-")[0] for d in dirs] == ["00001", "00002", "00003"]
    assert [Ledger.read(runs / d).status for d in dirs] == ["passed"] * 3
    assert [Ledger.read(runs / d).nodes["work"].output for d in dirs] == [0, 2, 4]
    assert "3 passed, 0 not passed, of 3 runs; cost $0.0000" in done.stdout
    assert sorted(log.read_text().split()) == ["0", "1", "2"]


def test_batch_run_again_keeps_what_passed(cli, tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    inputs = inputs_file(tmp_path / "in.jsonl", 2, log)
    args = ("batch", f"{GRAPH}:batch", "--inputs", str(inputs), "--runs-dir", str(tmp_path))
    assert cli(*args).returncode == 0
    again = cli(*args)
    assert again.returncode == 0
    assert again.stdout.count("kept (passed before)") == 2
    assert sorted(log.read_text().split()) == ["0", "1"]  # neither ran a second time


@pytest.mark.parametrize(
    ("line", "said"),
    [("{not json", "line 2: not JSON"), ("[1, 2]", "line 2: a list, not a JSON object")],
)
def test_batch_bad_inputs_file_is_one_error_line(cli, tmp_path: Path, line: str, said: str) -> None:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"n": 1, "log": "x"}\n' + line + "\n")
    runs = tmp_path / "runs"
    done = cli("batch", f"{GRAPH}:batch", "--inputs", str(inputs), "--runs-dir", str(runs))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not runs.exists()


@pytest.mark.slow
def test_batch_of_50_stopped_and_run_again_runs_each_input_once(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    inputs = inputs_file(tmp_path / "in.jsonl", 50, log)
    runs = tmp_path / "runs"
    command = [sys.executable, "-c", "from flowgraph.cli import main; main()", "batch",
               f"{GRAPH}:batch", "--inputs", str(inputs), "--runs-dir", str(runs),
               "--max-runs", "4"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if log.exists() and len(log.read_text().split()) >= 12:
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    finished_first = len(log.read_text().split())
    assert 12 <= finished_first < 50
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("kept (passed before)") == finished_first
    counts = collections.Counter(log.read_text().split())
    assert counts == collections.Counter(str(n) for n in range(50))  # each input ran once
    assert all(Ledger.read(p).status == "passed" for p in runs.iterdir())
    assert len(os.listdir(runs)) == 50


def test_importing_flowgraph_and_its_command_does_not_import_ray() -> None:
    code = (
        "import sys, flowgraph, flowgraph.cli, flowgraph.distributed; print('ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
