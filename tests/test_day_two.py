"""Day-two use, as a user hits it: settings that survive resume, graph files that import their
neighbours, runs that never started, and errors that lead to the fix (issue 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import CliResult

Cli = Callable[..., CliResult]

CHAIN = """
from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel

client = ScriptedModel({n: [f"{n} done " * 200] for n in ("a", "b", "c")})
graph = Graph("chain", client=client)
graph.node("a", Role("architect", "You plan.", model="opus"), "Plan")
graph.node("b", Role("backend", "You build.", model="opus"), "Build {a}", after=["a"])
graph.node("c", Role("tester", "You test.", model="opus"), "Test {b}", after=["b"])
"""


def test_a_cli_budget_is_kept_on_resume_and_status_shows_it(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "chain.py").write_text(CHAIN)
    first = cli("run", "chain.py", "--run-dir", "r", "--max-cost-usd", "0.0001",
                "--max-concurrency", "1", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1 and "budget_exceeded" in first.stdout
    spent = json.loads(cli("cost", "r", "--json", cwd=tmp_path).stdout)["run"]["cost_usd"]

    again = cli("resume", "r", cwd=tmp_path)  # no flag: the recorded cap still holds
    assert again.returncode == 1 and "budget_exceeded" in again.stdout
    after = json.loads(cli("cost", "r", "--json", cwd=tmp_path).stdout)["run"]["cost_usd"]
    assert after == spent

    summary = json.loads(cli("status", "r", "--json", cwd=tmp_path).stdout)
    assert summary["settings"] == {"max_concurrency": 1, "max_cost_usd": 0.0001}
    assert "max_cost_usd=0.0001" in cli("status", "r", cwd=tmp_path).stdout

    raised = cli("resume", "r", "--max-cost-usd", "5", cwd=tmp_path)  # a new cap overrides it
    assert raised.returncode == 0, raised.stdout + raised.stderr


def test_a_graph_file_imports_a_module_beside_it(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "base_roles_fg.py").write_text(
        'from flowgraph import Role\nARCHITECT = Role("architect", "You plan.", model="opus")\n'
    )
    (tmp_path / "proj" / "g.py").write_text(
        "from base_roles_fg import ARCHITECT\n"
        "from flowgraph import Graph\nfrom flowgraph.testing import ScriptedModel\n"
        'graph = Graph("g", client=ScriptedModel({"a": ["ok"]}))\n'
        'graph.node("a", ARCHITECT, "Plan")\n'
    )
    done = cli("run", "proj/g.py", "--run-dir", "r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _check(tmp_path: Path, cli: Cli, body: str) -> CliResult:
    (tmp_path / "g.py").write_text(
        "from pydantic import BaseModel\nfrom flowgraph import Graph, Role\n"
        "from flowgraph.testing import ScriptedModel\n"
        "class Plan(BaseModel):\n    steps: list[str]\n"
        'graph = Graph("g", client=ScriptedModel({}))\n'
        'graph.node("plan", Role("architect", "You plan.", output=Plan), "Plan")\n' + body
    )
    return cli("run", "g.py", "--run-dir", "r", cwd=tmp_path)


def test_literal_braces_are_told_to_be_doubled(tmp_path: Path, cli: Cli) -> None:
    bad = _check(tmp_path, cli, 'graph.node("b", Role("backend", "x"), '
                 """'Answer as JSON like {"steps": [1]}', after=["plan"])\n""")  # fmt: skip
    assert bad.returncode == 2
    assert "double them: {{ and }}" in bad.stderr and "inputs=" not in bad.stderr
    assert not (tmp_path / "r").exists()


def test_a_misspelt_field_of_a_structured_output_fails_before_running(
    tmp_path: Path, cli: Cli
) -> None:
    bad = _check(tmp_path, cli, 'graph.node("b", Role("backend", "x"), "Do {plan.stpes}", '
                 'after=["plan"])\n')  # fmt: skip
    assert bad.returncode == 2
    assert "Plan (the output of 'plan') has no field 'stpes'; did you mean 'steps'?" in bad.stderr
    assert not (tmp_path / "r").exists()


def test_no_api_key_fails_before_a_run_directory_exists(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "g.py").write_text(
        'from flowgraph import Graph, Role\ngraph = Graph("g")\n'
        'graph.node("a", Role("architect", "You plan."), "Plan")\n'
    )
    bad = cli("run", "g.py", "--run-dir", "r", cwd=tmp_path)
    assert bad.returncode == 2 and "ANTHROPIC_API_KEY" in bad.stderr
    assert not (tmp_path / "r").exists()


def test_status_tells_a_dead_run_from_a_live_one(tmp_path: Path, cli: Cli) -> None:
    from flowgraph import Ledger

    # A run whose process went away: its ledger says running, and nobody holds its lock.
    Ledger.create(tmp_path / "r", run_id="x", graph="g", fingerprint="f", input={}).close()
    dead = cli("status", "r", cwd=tmp_path)
    assert "no flowgraph process is driving this run" in dead.stdout
    assert "next: flowgraph resume r" in dead.stdout
    live = Ledger.open(tmp_path / "r", graph="g")  # a driver holds the lock
    try:
        shown = json.loads(cli("status", "r", "--json", cwd=tmp_path).stdout)
        assert "no flowgraph process" not in shown["current_state"]
    finally:
        live.close()


def test_output_shows_the_transcript_of_a_node_whose_name_is_no_file_name(
    tmp_path: Path, cli: Cli
) -> None:
    """The transcript is read from the journal by the node's name, whatever the name."""
    source = (
        "from flowgraph import Graph, Role\n"
        "from flowgraph.testing import ScriptedModel\n"
        "graph = Graph('plan', client=ScriptedModel(default='the plan'))\n"
        "graph.node('Plan', Role('architect', 'You plan.'), 'Plan it')\n"
    )
    talk = transcript_after_run(tmp_path, cli, source, "Plan")
    assert talk.splitlines() == ["[user] Plan it", "[assistant] the plan"]


def transcript_after_run(tmp_path: Path, cli: Cli, source: str, node: str) -> str:
    """`flowgraph output run NODE --transcript` after `flowgraph run` of a graph file."""
    (tmp_path / "graph.py").write_text(source)
    assert cli("run", "graph.py", "--run-dir", "run", cwd=tmp_path).returncode == 0
    talk = cli("output", "run", node, "--transcript", cwd=tmp_path)
    assert talk.returncode == 0, talk.stderr
    return talk.stdout


def test_output_refuses_a_transcript_from_a_damaged_journal_and_changes_nothing(
    tmp_path: Path, cli: Cli
) -> None:
    """A bad line the snapshot already covers is not read by `status`, but the transcript
    needs every line: it is refused in one line naming the line, and nothing is rewritten."""
    (tmp_path / "chain.py").write_text(CHAIN)
    assert cli("run", "chain.py", "--run-dir", "r", cwd=tmp_path).returncode == 0
    journal = tmp_path / "r" / "events.jsonl"
    lines = journal.read_bytes().split(b"\n")
    number = next(i for i, x in enumerate(lines) if x.startswith(b'{"n": "b", "t": {"k": "a"'))
    lines[number] = b'{"n": "b", "t": {"k": "nonsense"}}'.ljust(len(lines[number]))  # same length
    journal.write_bytes(b"\n".join(lines))
    before = journal.read_bytes()
    talk = cli("output", "r", "b", "--transcript", cwd=tmp_path)
    assert talk.returncode == 2 and talk.stdout == ""
    (line,) = talk.stderr.strip().splitlines()
    assert line.startswith(f"error: r/events.jsonl line {number + 1} is not a ledger update"), line
    assert journal.read_bytes() == before


def test_output_shows_a_nodes_result_and_transcript(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "chain.py").write_text(CHAIN)
    assert cli("run", "chain.py", "--run-dir", "r", cwd=tmp_path).returncode == 0
    text = cli("output", "r", "b", cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.startswith("b done b done")
    assert json.loads(cli("output", "r", "a", "--json", cwd=tmp_path).stdout).startswith("a done")
    talk = cli("output", "r", "b", "--transcript", cwd=tmp_path)
    assert talk.returncode == 0 and "[user] Build a done" in talk.stdout
    assert "[assistant] b done" in talk.stdout
    raw = json.loads(cli("output", "r", "b", "--transcript", "--json", cwd=tmp_path).stdout)
    assert raw["node"] == "b" and raw["messages"]
    missing = cli("output", "r", "../etc", cwd=tmp_path)
    assert missing.returncode == 2 and "its nodes are: a, b, c" in missing.stderr


def test_the_read_aloud_transcript_cuts_a_long_tool_result_and_json_keeps_it(
    tmp_path: Path, cli: Cli
) -> None:
    source = (
        "from flowgraph import Graph, Role\n"
        "from flowgraph.testing import ScriptedModel, tool_call\n"
        "def dump() -> str:\n"
        "    '''Print the whole log.'''\n"
        "    return 'x' * 5000 + 'END'\n"
        "client = ScriptedModel({'r': [tool_call('dump'), 'read it']})\n"
        "graph = Graph('big', client=client)\n"
        "graph.node('r', Role('ops', 'You read logs.', tools=[dump]), 'Read the log')\n"
    )
    talk = transcript_after_run(tmp_path, cli, source, "r")
    (result,) = [line for line in talk.splitlines() if "tool result" in line]
    assert len(result) < 600 and "END" not in result
    assert result.endswith("(4,503 more characters: --json shows them all)"), result
    raw = json.loads(cli("output", "run", "r", "--transcript", "--json", cwd=tmp_path).stdout)
    results = [b for m in raw["messages"] if isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]  # fmt: skip
    assert results[0]["content"] == "x" * 5000 + "END"
