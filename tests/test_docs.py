"""The documentation site as a reader meets it: `mkdocs build --strict` passes (a broken link,
page or API reference fails here), the API reference covers every name of ``flowgraph.__all__``
with a docstring, and the tutorial's code is examples/tutorial_team.py, run here to the results
the page shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import griffe
import pytest
from conftest import CliResult

import flowgraph

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"
EXAMPLE = ROOT / "examples" / "tutorial_team.py"
KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
OFFLINE = {k: v for k, v in os.environ.items() if k not in KEYS}

INCLUDE = re.compile(r'^--8<-- "examples/tutorial_team\.py:([a-z_]+)"$', re.M)
SECTION = re.compile(r"^# --8<-- \[(start|end):([a-z_]+)\]\n", re.M)


def _sections(source: str) -> dict[str, str]:
    """The file's named sections, in file order, each as the text between its markers."""
    found: dict[str, str] = {}
    marks = list(SECTION.finditer(source))
    for start, end in zip(marks[::2], marks[1::2], strict=True):
        assert (start[1], end[1], start[2]) == ("start", "end", end[2]), (start[0], end[0])
        found[start[2]] = source[start.end() : end.start()]
    return found


def _block_after(marker: str, page: str) -> str:
    """The fenced block that follows ``marker`` on a page."""
    match = re.search(re.escape(marker) + r"\n```[a-z]*\n(.*?)```", page, re.S)
    assert match, f"no block after {marker!r}"
    return match[1]


def _page() -> str:
    return TUTORIAL.read_text()


# -- the site ------------------------------------------------------------------------------
@pytest.mark.slow
def test_mkdocs_build_strict_passes_with_no_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # a theme banner, not a finding
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = built.stdout + built.stderr
    assert built.returncode == 0, log
    assert "WARNING" not in log, log
    reference = "".join(p.read_text() for p in (site / "reference").glob("*/index.html"))
    missing = [n for n in flowgraph.__all__ if f'id="flowgraph.{n}"' not in reference]
    assert missing == [], f"not rendered in the API reference: {missing}"
    tutorial = (site / "tutorial" / "index.html").read_text()
    assert "run_examples" in tutorial and "--8&lt;--" not in tutorial  # included, not quoted


def test_api_reference_lists_exactly_the_public_names() -> None:
    listed = [
        name
        for page in sorted((DOCS / "reference").glob("*.md"))
        for name in re.findall(r"^::: flowgraph\.(\w+)$", page.read_text(), re.M)
    ]
    public = set(flowgraph.__all__)
    assert sorted(set(listed) & public) == sorted(public), public - set(listed)
    assert len(listed) == len(set(listed)), "a name is documented twice"


def test_every_public_name_has_a_docstring() -> None:
    package = griffe.load("flowgraph", search_paths=[str(ROOT)], resolve_aliases=True)
    undocumented = []
    for name in flowgraph.__all__:
        member = package[name]
        target = member.final_target if member.is_alias else member
        if target.docstring is None or not target.docstring.value.strip():
            undocumented.append(name)
    assert undocumented == []


PACKAGE_ARG = re.compile(r"'?(flowgraph-llm|\.)(\[\w+\])?'?")  # this project, or this checkout


def test_docs_name_no_package_to_install_but_this_one() -> None:
    """`flowgraph` on the public index is an unrelated project: every install hint in the
    README, the docs, the examples and flowgraph's own messages names flowgraph-llm (or an
    extra of it), or this checkout (`-e .`)."""
    files = [ROOT / "README.md", *DOCS.glob("**/*.md"), *(ROOT / "examples").glob("*.py")]
    files += [p for p in (ROOT / "flowgraph").rglob("*.py") if "sample_project" not in p.parts]
    hints = [
        (path.name, hint)
        for path in files
        for hint in re.findall(r"pip install ([^`\"\n;)&#]+)", path.read_text())
    ]
    assert len(hints) >= 5, f"too few install hints found, the pattern is wrong: {hints}"
    wrong = [
        (name, hint)
        for name, hint in hints
        if not all(PACKAGE_ARG.fullmatch(w) for w in hint.split() if not w.startswith("-"))
    ]
    assert wrong == []


# -- the tutorial: the page shows examples/tutorial_team.py, section by section -------------
def test_tutorial_shows_all_of_its_example_file_in_order() -> None:
    source = EXAMPLE.read_text()
    sections = _sections(source)
    shown = INCLUDE.findall(_page())
    assert shown == list(sections), "the page must include every section, in file order"
    # Outside the sections there is only the module docstring and blank lines: nothing runs
    # that the page does not show.
    outside = SECTION.sub("", source)
    for body in sections.values():
        outside = outside.replace(body, "", 1)
    docstring = re.match(r'""".*?"""\n', source, re.S)
    assert docstring is not None
    assert outside.replace(docstring[0], "", 1).strip() == ""


@pytest.mark.slow
def test_tutorial_program_prints_what_the_page_shows(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path, env=OFFLINE, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    shown = _block_after("<!-- output: python examples/tutorial_team.py -->", _page())
    assert ran.stdout == shown
    workspace = tmp_path / "runs" / "tutorial_example" / "workspace"
    assert sorted(p.name for p in workspace.iterdir()) == ["cli.py", "slug.py"]


def test_tutorial_diagram_is_what_flowgraph_show_draws(cli: Callable[..., CliResult]) -> None:
    shown = cli("show", str(EXAMPLE))
    assert shown.returncode == 0, shown.stderr
    shown_on_page = _block_after("<!-- flowgraph show examples/tutorial_team.py -->", _page())
    assert shown.stdout == shown_on_page


def _nodes(run_dir: Path) -> dict[str, Any]:
    nodes: dict[str, Any] = json.loads((run_dir / "ledger.json").read_text())["nodes"]
    return nodes


def test_tutorial_commands_run_status_output_cost_and_resume(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    """Steps 7 and 8 of the tutorial, as a user types them."""
    example = tmp_path / "tutorial_team.py"
    shutil.copy(EXAMPLE, example)
    run_dir = tmp_path / "runs" / "tutorial"
    first = cli("run", str(example), "--run-dir", str(run_dir), cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = _nodes(run_dir)
    assert {n: r["status"] for n, r in before.items()} == dict.fromkeys(
        ["plan", "api", "cli", "tests", "review"], "passed"
    )
    assert before["tests"]["output"] == {"passed": 2}

    status = cli("status", str(run_dir))
    assert status.returncode == 0 and "review" in status.stdout, status.stderr
    output = cli("output", str(run_dir), "review", "--json")
    assert output.returncode == 0, output.stderr
    assert json.loads(output.stdout)["approved"] is True
    cost = cli("cost", str(run_dir))
    assert cost.returncode == 0 and "architect" in cost.stdout, cost.stderr

    # The same command again: nothing runs, nothing is paid.
    again = cli("run", str(example), "--run-dir", str(run_dir), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _nodes(run_dir) == before

    # The reviewer's instructions changed: only review runs.
    text = example.read_text()
    assert "You review Python code for clarity." in text
    example.write_text(text.replace("for clarity.", "for speed."))
    edited = cli("run", str(example), "--run-dir", str(run_dir), cwd=tmp_path)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    after = _nodes(run_dir)
    for name in ("plan", "api", "cli", "tests"):
        assert after[name]["started_at"] == before[name]["started_at"], name
    assert after["review"]["started_at"] != before["review"]["started_at"]
    assert after["review"]["status"] == "passed"
