"""The `flowgraph` command as a user runs it: run, status, show, resume, and plain progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import CliResult

from flowgraph import Ledger

TEAM = """
from flowgraph import Graph, Role, Context
from flowgraph.testing import ScriptedModel

async def check(ctx: Context) -> dict:
    return {"api": ctx.outputs["api"]}

client = ScriptedModel({"plan": ["plan for {feature}"], "api": ["api done"]})
graph = Graph("team", inputs=["feature"], client=client)
graph.node("plan", Role("architect", "You plan.", model="opus"), "Plan {feature}")
graph.node("api", Role("backend", "You build."), "Build {plan}", after=["plan"])
graph.node("check", check, after=["api"])
"""


Cli = Callable[..., CliResult]


def test_run_then_status_table_and_json(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "team.py").write_text(TEAM)
    done = cli("run", "team.py", "--input", "feature=login", "--run-dir", "r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "plan: passed after 1 turns, 0 tool calls" in done.stdout
    assert "run team-" in done.stdout and "passed" in done.stdout
    assert "flowgraph status r" in done.stdout

    table = cli("status", "r", cwd=tmp_path)
    assert table.returncode == 0
    assert "claude-opus-5-5" in table.stdout and "3 of 3 nodes passed" in table.stdout

    summary = json.loads(cli("status", "r", "--json", cwd=tmp_path).stdout)
    assert summary["status"] == "passed"
    assert summary["counts"] == {"passed": 3}
    assert summary["features"] == [{"name": n, "passes": True} for n in ("plan", "api", "check")]
    assert summary["nodes"]["plan"]["model"] == "claude-opus-5-5"


def test_run_into_an_existing_run_dir_resumes_it(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "team.py").write_text(TEAM)
    cli("run", "team.py", "-i", "feature=x", "--run-dir", "r", cwd=tmp_path)
    again = cli("run", "team.py", "--run-dir", "r", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("passed earlier, reused") == 3
    resumed = cli("resume", "r", cwd=tmp_path)
    assert resumed.returncode == 0 and "0 of 3 nodes to run" in resumed.stdout


def test_show_prints_mermaid(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "team.py").write_text(TEAM)
    shown = cli("show", "team.py:graph", "--format", "mermaid", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("flowchart TD\n")
    assert "plan --> api" in shown.stdout and "api --> check" in shown.stdout


def test_failed_run_exits_1_and_says_what_to_do(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "bad.py").write_text(
        "from flowgraph import Graph\n"
        "async def boom(ctx):\n    raise RuntimeError('tests failed: 2 of 5')\n"
        "graph = Graph('bad')\ngraph.node('tests', boom)\n"
    )
    failed = cli("run", "bad.py", "--run-dir", "r", cwd=tmp_path)
    assert failed.returncode == 1
    assert "tests: failed: tests failed: 2 of 5" in failed.stdout
    assert "fix the failure of tests" in failed.stdout
    assert Ledger.read(tmp_path / "r").nodes["tests"].error == "tests failed: 2 of 5"


def test_demo_runs_offline_and_says_the_models_are_scripted(tmp_path: Path, cli: Cli) -> None:
    demo = cli("demo", "--run-dir", "d", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "SCRIPTED" in demo.stdout
    assert "flowgraph resume" in demo.stdout or "flowgraph status d" in demo.stdout
    doc = Ledger.read(tmp_path / "d")
    assert doc.status == "passed" and len(doc.nodes) >= 5


def test_log_json_writes_json_lines_with_run_and_node(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "team.py").write_text(TEAM)
    done = cli("run", "team.py", "-i", "feature=x", "--log-json", cwd=tmp_path)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    started = [e for e in lines if e["event"] == "NodeStarted"]
    assert {e["node"] for e in started} == {"plan", "api", "check"}
    assert all(e["run_id"].startswith("team-") for e in lines)


ADVISED = """
from flowgraph import Graph, Role
from flowgraph.agent.consults import Advisor
from flowgraph.testing import ScriptedModel, tool_call

client = ScriptedModel({"build": [tool_call("advisor", question="how?"), "built"],
                        "advisor": ["Start with the data model."]})
graph = Graph("advised", model="haiku", client=client)
graph.node("build", Role("builder", "You build.", advisor=Advisor(mode="emulated")), "Build it")
"""


def test_cost_and_status_show_advisor_spend_apart(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "advised.py").write_text(ADVISED)
    assert cli("run", "advised.py", "--run-dir", "r", cwd=tmp_path).returncode == 0
    table = cli("cost", "r", cwd=tmp_path)
    assert table.returncode == 0
    assert "advisor consults by role" in table.stdout
    assert "executor $" in table.stdout and "+ advisor $" in table.stdout
    data = json.loads(cli("cost", "r", "--json", cwd=tmp_path).stdout)
    assert data["advisor_by_role"]["builder"]["consults"] == 1
    assert data["advisor_by_role"]["builder"]["consult_rate"] == 0.5  # 1 consult in 2 turns
    assert set(data["by_kind"]) == {"executor", "advisor"}
    total = data["by_kind"]["executor"]["cost_usd"] + data["by_kind"]["advisor"]["cost_usd"]
    assert data["run"]["cost_usd"] == total
    status = cli("status", "r", cwd=tmp_path)
    assert "build: advisor: 1 consult, $" in status.stdout
