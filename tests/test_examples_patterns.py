"""The pattern examples (examples/map_review.py ... checklist.py) as a user meets them: each is
drawn by `flowgraph show` with its pattern's shape, and runs offline through the CLI to the
status its docstring promises; the gate and checklist examples go on with approve/resume."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult

from flowgraph import Graph, Ledger
from flowgraph.testing import ScriptedModel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
OFFLINE = {k: v for k, v in os.environ.items() if k not in KEYS}  # the examples run SCRIPTED
_fresh = itertools.count()
PERSON_TYPING_S = 5  # how long a person takes to switch terminals and type `flowgraph steer`

# What `flowgraph show` must draw for each example: its pattern's Mermaid shape(s).
SHAPES = {
    "map_review": ['review[/"review<br/>map over files"/]', "files --> review"],
    "race_models": ['slugify{{"slugify<br/>race: haiku vs sonnet vs sonnet_advised"}}'],
    "review_loop": ["edit([", "edit -. changes requested .-> notes"],
    "approval_gate": ['gate{"gate<br/>approval gate"}', "gate --> deploy"],
    "steering": ['audit["audit<br/>auditor'],
    "subgraph_team": ['subgraph review_sub["review"]', "build --> review__security"],
    "checklist": ['endpoints[("endpoints<br/>checklist")]'],
    "routing": ['triage{"triage<br/>route: easy | hard"}', "triage -->|hard| expert"],
}
# The status each example's first offline run ends with.
FIRST_RUN = {
    "map_review": ([], "passed"),
    "race_models": ([], "passed"),
    "review_loop": ([], "passed"),
    "approval_gate": ([], "waiting_approval"),
    "steering": ([], "passed"),
    "subgraph_team": ([], "passed"),
    "checklist": (["--max-items", "2"], "incomplete"),
    "routing": ([], "passed"),
}


@pytest.fixture
def flowgraph(cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """The command in this process, from the repository root, offline (no API key)."""

    def call(*args: str | Path) -> CliResult:
        return cli(*map(str, args), cwd=ROOT)

    return call


def ledger(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "ledger.json").read_text())
    return doc


def _load(name: str) -> Any:
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pattern_example_{name}_{next(_fresh)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `flowgraph run` does, for pydantic's annotations
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_show_draws_the_pattern(flowgraph: Callable[..., CliResult], name: str) -> None:
    shown = flowgraph("show", f"examples/{name}.py")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("flowchart TD\n")
    for shape in SHAPES[name]:
        assert shape in shown.stdout, shown.stdout


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_example_is_short_scripted_offline_and_real_with_a_key(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    source = (EXAMPLES / f"{name}.py").read_text()
    assert len(source.splitlines()) < 80
    assert "SCRIPTED" in source and f"flowgraph run examples/{name}.py" in source
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    module = _load(name)
    assert [v for v in vars(module).values() if isinstance(v, Graph)] == [module.graph]
    assert isinstance(module.graph.client, ScriptedModel)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-used")
    assert _load(name).graph.client is None


@pytest.mark.parametrize("name", sorted(set(FIRST_RUN) - {"steering"}))  # steered below
def test_example_runs_offline_to_its_status(
    flowgraph: Callable[..., CliResult], tmp_path: Path, name: str
) -> None:
    extra, status = FIRST_RUN[name]
    run_dir = tmp_path / "run"
    done = flowgraph("run", f"examples/{name}.py", "--run-dir", run_dir, *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = ledger(run_dir)
    assert doc["status"] == status, doc["current_state"]
    nodes = doc["nodes"]
    if name == "map_review":
        items = [n for n, r in nodes.items() if r.get("parent") == "review"]
        assert items == [f"review[{i}]" for i in range(len(items))] and len(items) >= 5
        assert all(line.endswith("LGTM (scripted review)") for line in nodes["review"]["output"])
    if name == "race_models":
        # haiku fails its check, or is cancelled mid-check once a sonnet has won: never True
        assert nodes["slugify.haiku"]["check_passed"] is not True
        assert nodes["slugify"]["winner"] in ("sonnet", "sonnet_advised")
        assert nodes[f"slugify.{nodes['slugify']['winner']}"]["check_passed"] is True
    if name == "review_loop":
        assert nodes["edit.review1"]["output"]["approved"] is False
        assert nodes["edit"]["output"]["rounds"] == 2
        assert "edit.review3" not in nodes
    if name == "subgraph_team":
        assert {"review.security", "review.style", "review.lead"} <= set(nodes)
        assert nodes["review"]["output"] == {"lead": nodes["review.lead"]["output"]}


def test_gate_example_waits_then_approve_and_resume_run_the_deploy(
    flowgraph: Callable[..., CliResult], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    first = flowgraph("run", "examples/approval_gate.py", "--run-dir", run_dir)
    assert first.returncode == 0, first.stderr
    doc = ledger(run_dir)
    statuses = {n: r["status"] for n, r in doc["nodes"].items()}
    assert statuses == {"plan": "passed", "gate": "waiting_approval", "deploy": "pending",
                        "changelog": "passed"}  # fmt: skip
    assert f"flowgraph approve {run_dir} gate" in first.stdout

    approved = flowgraph("approve", run_dir, "gate", "--note", "after 18:00")
    assert approved.returncode == 0, approved.stderr
    resumed = flowgraph("resume", run_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    doc = ledger(run_dir)
    assert doc["status"] == "passed"
    assert doc["nodes"]["plan"]["attempts"] == 1  # reused, not run again
    assert doc["nodes"]["gate"]["decision"]["text"] == "after 18:00"
    assert "approved: after 18:00" in (run_dir / "workspace" / "deployed.txt").read_text()


def test_checklist_example_takes_three_items_a_run(
    flowgraph: Callable[..., CliResult], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    first = flowgraph("run", "examples/checklist.py", "--run-dir", run_dir,
                      "--max-items", "3")  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    doc = ledger(run_dir)
    assert doc["status"] == "incomplete"
    assert [f["passes"] for f in doc["features"]] == [True] * 3 + [False] * 3

    second = flowgraph("resume", run_dir, "--max-items", "3")
    assert second.returncode == 0, second.stdout + second.stderr
    doc = ledger(run_dir)
    assert doc["status"] == "passed"
    assert len(doc["features"]) == 6 and all(f["passes"] for f in doc["features"])
    assert doc["nodes"]["endpoints.init"]["attempts"] == 1  # initialized once
    assert all(doc["nodes"][f"endpoints[{f['name']}]"]["attempts"] == 1 for f in doc["features"])


@pytest.mark.slow
def test_steering_example_leaves_a_person_time_to_steer_from_another_process(
    flowgraph_exe: list[str], tmp_path: Path
) -> None:
    """At its default pace the example is still auditing several seconds after it started,
    long enough to type `flowgraph steer` in another terminal (it used to end in 3.5 s)."""
    run_dir = tmp_path / "run"
    args = [*flowgraph_exe, "run", "examples/steering.py", "--run-dir", str(run_dir)]
    with subprocess.Popen(args, cwd=ROOT, env=OFFLINE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        deadline = time.monotonic() + 30
        while not (
            (run_dir / "ledger.json").exists()
            # The first snapshot holds no nodes yet: the plan's snapshot follows it.
            and getattr(Ledger.read(run_dir).nodes.get("audit"), "status", None) == "running"
        ):
            assert time.monotonic() < deadline and proc.poll() is None, "audit never ran"
            time.sleep(0.1)
        time.sleep(PERSON_TYPING_S)
        assert proc.poll() is None, "the audit ended before a person could steer it"
        steer = [*flowgraph_exe, "steer", str(run_dir), "audit", "Runtime deps only."]
        sent = subprocess.run(
            steer, cwd=ROOT, env=OFFLINE, capture_output=True, text=True, timeout=60
        )
        assert sent.returncode == 0, sent.stderr
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    record = ledger(run_dir)["nodes"]["audit"]
    assert record["status"] == "passed"
    assert [s["text"] for s in record["steering"]] == ["Runtime deps only."]
    assert record["steering"][0]["turn"] > 1  # delivered at a later turn, mid-audit
    assert record["output"] == "Audit done. Followed: Runtime deps only."


@pytest.mark.slow
def test_steering_example_from_python_with_the_run_handle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("STEERING_DELAY", "0.5")  # the example's pace, set from outside
    graph = _load("steering").graph
    assert graph.client.delay == 0.5

    async def steered() -> Any:
        run = graph.start()
        await asyncio.sleep(0.7)
        run.steer("audit", "Focus on pydantic.")
        return await run

    result = asyncio.run(steered())
    assert result.status == "passed"
    assert result["audit"] == "Audit done. Followed: Focus on pydantic."


@pytest.mark.slow
def test_steering_example_as_a_script_takes_its_pace_from_delay(tmp_path: Path) -> None:
    script = [sys.executable, str(EXAMPLES / "steering.py"), "--delay", "0.2"]
    done = subprocess.run(
        script, cwd=tmp_path, env=OFFLINE, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Audit done. Followed: Skip the dev tools; focus on runtime dependencies."
    )
    record = ledger(tmp_path / "runs" / "steering_example")["nodes"]["audit"]
    assert record["status"] == "passed" and record["steering"][0]["turn"] > 1
