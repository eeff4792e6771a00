"""What a user sees of a run, and the errors that lead to the fix (issue 10, items 5 and 6; the
substitutions of issue 11): ``flowgraph status`` and the live view at 80 and 100 columns, race
winners, pattern parts in the progress lines, gates after approve/reject, tokens, fallbacks and
substitutions, unpriced models, ``node >> "name"``, ``run_sync`` in a running loop, and the
command line without a command."""

from __future__ import annotations

import asyncio
import io
import json
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from conftest import ROOT, CliResult
from rich.console import Console, RenderableType

from flowgraph import ConfigError, Context, Event, Graph, GraphError, Ledger, Pricing, Role
from flowgraph.cli.progress import Progress
from flowgraph.compile.validation import UnpricedModelWarning
from flowgraph.demo import BACKEND_FALLBACK, offline_demo
from flowgraph.events import NodeFinished, NodeStarted, RunStarted
from flowgraph.models.seam import ModelRequest, ModelResponse, Usage
from flowgraph.testing import ScriptedModel

Cli = Callable[..., CliResult]
EXAMPLES = ROOT / "examples"
WIDTHS = (80, 100)


def assert_fits(text: str, width: int, words: Iterable[str]) -> None:
    """No line is wider than ``width``, no cell was shortened, and each of ``words`` stands
    whole on a line (no piece of it at a line's end or start)."""
    lines = text.splitlines()
    assert [line for line in lines if len(line) > width] == [], text
    assert "…" not in text, text
    tokens = {t.strip(",;:()'\"`") for line in lines for t in line.split()}
    for word in words:
        assert word in tokens, f"{word!r} is not whole on any line:\n{text}"
        pieces = {t for t in tokens - {word} if len(t) > 2 and word.startswith(t)}
        assert not pieces, f"{word!r} is broken ({pieces}):\n{text}"


def render(renderable: RenderableType, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(renderable)
    return out.getvalue()


def status_at(cli: Cli, monkeypatch: pytest.MonkeyPatch, width: int, run_dir: str,
              cwd: Path) -> str:  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(width))
    shown = cli("status", run_dir, cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


# -- status and the live view at 80 and 100 columns ------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The offline demo, run once with a progress view rendered at 80 and 100 columns after
    every event: the run directory and what the view said of the backend along the way."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    graph = offline_demo()
    progress = Progress(io.StringIO(), live=False)
    seen: list[str] = []

    def watch(event: Event) -> None:
        progress(event)
        for width in WIDTHS:
            text = render(progress.view(), width)
            assert_fits(text, width, [])
            if width == 80:
                seen.append(text)

    try:
        assert graph.run_sync(run_dir=run_dir, on_event=watch).ok
    finally:
        graph.client.close()  # type: ignore[union-attr]
    return run_dir, seen


def test_status_and_cost_fit_80_and_100_columns_with_every_model_id_whole(
    demo_run: tuple[Path, list[str]], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = demo_run
    models = {r.model for r in Ledger.read(run_dir).nodes.values() if r.model}
    assert len(models) >= 3
    for width in WIDTHS:
        text = status_at(cli, monkeypatch, width, str(run_dir), run_dir.parent)
        assert_fits(text, width, [*models, "architect", "reviewer"])
        header = text.splitlines()[1].split()
        assert header[:3] == ["node", "status", "model"]  # one header line, at the top
        assert "error" not in header
        spent = cli("cost", str(run_dir)).stdout  # two models cut short would read as one
        assert_fits(spent, width, [*models, BACKEND_FALLBACK])


def test_the_live_view_fits_and_shows_a_node_starting_before_its_first_reply(
    demo_run: tuple[Path, list[str]],
) -> None:
    _, seen = demo_run
    architect = [_status_of("architect", text) for text in seen]
    assert "starting" in architect and "running" in architect
    assert architect.index("starting") < architect.index("running")
    assert architect[-1] == "passed"


def test_a_slow_start_says_what_the_node_waits_for() -> None:
    progress = Progress(io.StringIO(), live=False)
    progress(_started("plan"))
    progress(NodeStarted("plan", 1, "claude-opus-5-5"))
    assert "waiting for its first model reply" not in render(progress.view(), 80)
    progress.rows["plan"].started -= 3  # three seconds on, and still no reply
    text = render(progress.view(), 80)
    assert _status_of("plan", text) == "starting"
    assert "plan: waiting for its first model reply" in text


def test_a_fallback_note_shows_while_the_node_runs_and_goes_when_it_passes(
    demo_run: tuple[Path, list[str]],
) -> None:
    _, seen = demo_run
    noted = [text for text in seen if f"fallback claude-sonnet-5-5 -> {BACKEND_FALLBACK}" in text]
    assert noted and _status_of("backend", noted[0]) in ("starting", "running")
    assert "fallback" not in seen[-1] and _status_of("backend", seen[-1]) == "passed"


def test_the_live_view_ends_on_an_empty_line_so_ctrl_c_cannot_draw_it_twice() -> None:
    # The terminal echoes ^C at the cursor, the end of the last line drawn; on a full line it
    # wraps, and the view (title included) is drawn again below itself.
    progress = Progress(io.StringIO(), live=False)
    progress(_started("n" * 70))
    for width in WIDTHS:
        lines = render(progress.view(), width).splitlines()
        assert lines[-1] == "" and lines[0].startswith("flowgraph run")
        assert sum(line.startswith("flowgraph run") for line in lines) == 1


def _started(*nodes: str) -> Event:
    from flowgraph.events import RunStarted

    return RunStarted("r1", "g", nodes, nodes, None, dict.fromkeys(nodes, "claude-opus-5-5"))


def _status_of(node: str, text: str) -> str:
    for line in text.splitlines():
        if line.startswith(node + " "):
            return line.split()[1]
    raise AssertionError(f"no row for {node}:\n{text}")


def test_status_counts_cached_input_as_tokens_in(
    demo_run: tuple[Path, list[str]], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = demo_run
    usage = Ledger.read(run_dir).nodes["architect"].usage
    assert usage["input_tokens"] == 0  # the demo's prompts are all cached
    want = sum(usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                  "cache_read_input_tokens"))  # fmt: skip
    text = status_at(cli, monkeypatch, 100, str(run_dir), run_dir.parent)
    assert f" {want}/{usage['output_tokens']} " in _row("architect", text)


def _row(node: str, text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(node + " "))


# -- what answered: fallbacks and substitutions (issue 11) -----------------------------------


def test_status_says_which_turns_a_fallback_answered(
    demo_run: tuple[Path, list[str]], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = demo_run
    text = status_at(cli, monkeypatch, 200, str(run_dir), run_dir.parent)
    assert (
        f"backend: turn 1 answered by fallback {BACKEND_FALLBACK} (claude-sonnet-5-5: "
        "overloaded (529))" in text
    )
    shown = json.loads(cli("status", str(run_dir), "--json").stdout)["substitutions"]
    assert shown == [{"node": "backend", "turn": 1, "requested": "claude-sonnet-5-5",
                      "served": BACKEND_FALLBACK, "by": "fallback",
                      "tried": ["claude-sonnet-5-5: overloaded (529)"]}]  # fmt: skip


class Gateway:
    """An endpoint that answers every request with haiku, whatever was asked (as a gateway
    with its own fallback list does)."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        usage = Usage(input_tokens=40, output_tokens=2)
        return ModelResponse([{"type": "text", "text": "ok"}], "end_turn", "claude-haiku-5-5",
                             usage)  # fmt: skip


def test_status_shows_a_model_the_endpoint_answered_with_instead(tmp_path: Path, cli: Cli) -> None:
    g = Graph("swap", client=Gateway())
    g.node("a", Role("writer", "You write.", model="sonnet"), "Write")
    assert g.run_sync(run_dir=tmp_path / "r").ok
    text = cli("status", "r", cwd=tmp_path).stdout
    assert "a: turn 1 answered by claude-haiku-5-5, though claude-sonnet-5-5 was asked" in text
    assert "claude-haiku-5-5" in _row("a", text)  # recorded (and priced) as what answered
    swaps = json.loads(cli("status", "r", "--json", cwd=tmp_path).stdout)["substitutions"]
    assert [(s["requested"], s["served"], s["by"]) for s in swaps] == [
        ("claude-sonnet-5-5", "claude-haiku-5-5", "endpoint")
    ]


# -- patterns: race winners, parts in the progress lines -------------------------------------


async def slugify_works(output: str, ctx: Context) -> bool:
    if "sloppy" in output:
        return False  # found at once
    await asyncio.sleep(0.05)  # the good ones take a moment to check
    return True


def test_status_shows_a_failed_race_check_and_the_winner(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = {"slugify.haiku": ["sloppy"], "slugify.sonnet": ["good"], "slugify.opus": ["good"]}
    g = Graph("race", client=ScriptedModel(script))
    roles = [Role(m, "You code.", model=m) for m in ("haiku", "sonnet", "opus")]
    g.race("slugify", roles, "Write slugify", check=slugify_works)
    assert g.run_sync(run_dir=tmp_path / "r").ok
    doc = Ledger.read(tmp_path / "r")
    assert doc.nodes["slugify.haiku"].check_passed is False
    assert doc.nodes["slugify.haiku"].status == "passed"  # its work passed; its check did not
    winner = doc.nodes["slugify"].winner
    loser = ({"sonnet", "opus"} - {winner}).pop()
    for width in WIDTHS:
        text = status_at(cli, monkeypatch, width, "r", tmp_path)
        assert_fits(text, width, ["claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5"])
        assert "check failed" in _row("slugify.haiku", text)
        assert "passed, won" in _row(f"slugify.{winner}", text)
        assert "passed, lost" in _row(f"slugify.{loser}", text)
        assert f"slugify: winner: {winner}" in text


def test_map_items_review_rounds_and_consults_show_in_the_progress_lines(
    tmp_path: Path, cli: Cli
) -> None:
    mapped = cli("run", str(EXAMPLES / "map_review.py"), "--run-dir", "m", cwd=tmp_path).stdout
    assert re.search(r"review\[0\]: started \(attempt 1\) claude-haiku-5-5", mapped)
    assert re.search(r"review\[6\]: passed", mapped)
    looped = cli("run", str(EXAMPLES / "review_loop.py"), "--run-dir", "l", cwd=tmp_path).stdout
    assert "edit.review1: started" in looped and "edit.revise2: passed" in looped
    advised = cli("run", str(EXAMPLES / "advisor_team.py"), "--run-dir", "a",
                  "-i", "bug=median() is wrong for even lengths", cwd=tmp_path).stdout  # fmt: skip
    assert re.search(r"fix: consulted claude-opus-5-5, \d+ uses left", advised), advised


def test_the_live_view_counts_a_patterns_parts_on_its_line() -> None:
    progress = Progress(io.StringIO(), live=False)
    progress(_started("review"))
    progress(NodeStarted("review", 1, "claude-haiku-5-5"))
    for i in range(4):
        progress(NodeStarted(f"review[{i}]", 1, "claude-haiku-5-5", parent="review"))
    progress(NodeFinished("review[0]", "passed", parent="review"))
    progress(NodeFinished("review[1]", "failed", "boom", parent="review"))
    text = render(progress.view(), 80)
    assert "review: 1 of 4 parts passed; running: review[2], review[3]; failed: review[1]" in (
        " ".join(text.split())
    )
    assert _status_of("review", text) == "running"


# -- gates: after approve, after reject ------------------------------------------------------


def test_status_after_approve_says_resume_and_after_reject_how_to_go_ahead(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = str(EXAMPLES / "approval_gate.py")
    assert cli("run", gate, "--run-dir", "g", cwd=tmp_path).returncode == 0
    waiting = status_at(cli, monkeypatch, 80, "g", tmp_path)
    assert "gate: waiting for approval" in waiting and "error:" not in waiting
    assert "next: a person must approve gate" in waiting

    assert cli("approve", "g", "gate", "--note", "ok", cwd=tmp_path).returncode == 0
    approved = status_at(cli, monkeypatch, 200, "g", tmp_path)
    assert "a person must approve" not in approved
    assert "next: gate approved by a person: `flowgraph resume g` runs what waited" in approved
    assert "gate: approved by a person: ok; the next resume acts on it" in approved

    assert cli("run", gate, "--run-dir", "h", cwd=tmp_path).returncode == 0
    assert cli("reject", "h", "gate", "--note", "not today", cwd=tmp_path).returncode == 0
    assert "gate rejected by a person" in status_at(cli, monkeypatch, 200, "h", tmp_path)
    assert cli("resume", "h", cwd=tmp_path).returncode == 1
    rejected = status_at(cli, monkeypatch, 200, "h", tmp_path)
    assert "fix the failure" not in rejected and "error:" not in rejected
    assert "gate: rejected by a person: not today" in rejected
    assert "next: gate was rejected by a person" in rejected
    assert "to go ahead after all: `flowgraph approve h gate --note ...`" in rejected
    # ...and that advice works.
    assert cli("approve", "h", "gate", "--note", "fine, go", cwd=tmp_path).returncode == 0
    assert cli("resume", "h", cwd=tmp_path).returncode == 0
    assert Ledger.read(tmp_path / "h").status == "passed"


# -- errors that mislead ---------------------------------------------------------------------

UNPRICED = """
from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel

graph = Graph("g", client=ScriptedModel({}))
report = graph.node("report", Role("writer", "You write.", model="gpt-4o"), "Report")
graph.node("review", Role("reviewer", "You review.", model="claude-sonnet-4-7-typo"), "Do {report}")
graph.node("final", Role("editor", "You edit.", model="opus"), "Edit {review}", after=["review"])
report >> "review"
"""


def test_an_unpriced_model_is_a_warning_with_did_you_mean(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "g.py").write_text(UNPRICED)
    done = cli("run", "g.py", "--run-dir", "r", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # a warning, not an error
    lines = done.stderr.splitlines()
    assert [line.split("'")[1] for line in lines if line.startswith("warning: model")] == [
        "gpt-4o", "claude-sonnet-4-7-typo"
    ]  # fmt: skip
    assert "did you mean 'claude-sonnet-4-6'?" in done.stderr
    assert "(node report)" in done.stderr and "--prices FILE" in done.stderr
    assert "Traceback" not in done.stderr and "UnpricedModelWarning" not in done.stderr


def test_a_priced_model_on_a_named_endpoint_is_not_warned_about(tmp_path: Path) -> None:
    g = Graph("g", client=ScriptedModel({}))
    g.node("a", Role("r", "x", model="openai/gpt-5.5", endpoint="gw"), "A")
    valid = g.validate()
    assert [m.split("'")[1] for m in valid.unpriced(Pricing.default())] == ["gw:openai/gpt-5.5"]
    priced = Pricing.default().with_prices({"gw:openai/gpt-5.5": {"input": 1, "output": 2}})
    assert valid.unpriced(priced) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpricedModelWarning)
        assert g.run_sync(pricing=priced).ok
    with pytest.warns(UnpricedModelWarning, match="gw:openai/gpt-5.5"):
        g.run_sync()


def test_a_node_links_to_a_nodes_name(tmp_path: Path) -> None:
    g = Graph("g", client=ScriptedModel({}))
    report = g.node("report", Role("r", "x"), "Report")
    g.node("review", Role("r", "x"), "Review")
    g.node("final", Role("r", "x"), "Final")
    report >> "review" >> g.node("last", Role("r", "x"), "Last")
    ["report", "review"] >> g.node("audit", Role("r", "x"), "Audit")
    after = {name: d.after for name, d in g.declared.items()}
    assert after["review"] == ["report"] and after["last"] == ["review"]
    assert after["audit"] == ["report", "review"]
    with pytest.raises(GraphError, match="no node named 'reviw' to link; did you mean 'review'"):
        report >> "reviw"
    with pytest.raises(GraphError, match="3 is not a node; link nodes"):
        report >> 3  # type: ignore[operator]
    assert g.run_sync().ok


def test_run_sync_inside_a_running_loop_says_to_await_run() -> None:
    g = Graph("g", client=ScriptedModel({}))
    g.node("a", Role("r", "x"), "A")

    async def notebook_cell() -> None:
        g.run_sync()

    with pytest.raises(ConfigError, match=r"use `await graph.run\(...\)` there instead"):
        asyncio.run(notebook_cell())


def test_no_command_prints_help_and_an_unknown_one_one_error_line(cli: Cli) -> None:
    bare = cli()
    assert bare.returncode == 0 and "Usage" in bare.stdout and bare.stderr == ""
    unknown = cli("bogus")
    assert unknown.returncode == 2
    said = "error: No such command 'bogus'; use `flowgraph --help` to see what it takes\n"
    assert unknown.stderr == said


def test_a_large_patterns_parts_are_counted_not_each_printed() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    progress(RunStarted("r", "g", ("items",), ("items",), None, {}))
    for i in range(1000):
        progress(NodeStarted(f"items[{i}]", 1, "", parent="items"))
        progress(NodeFinished(f"items[{i}]", "failed" if i == 500 else "passed", parent="items"))
    lines = out.getvalue().splitlines()
    assert len(lines) < 60, len(lines)  # the first parts each, then failures and counts
    assert any("items[0]: passed" in line for line in lines)
    assert any("items[500]: failed" in line for line in lines)  # a failure is always said
    assert not any("items[999]: passed" in line for line in lines)
    assert any(re.search(r"items: \d+ of \d+ parts passed", line) for line in lines)
