"""A workspace per writer node: parallel coders each work in their own copy (a git worktree in a
repository), their changes come back when they pass, and a conflict fails the later node."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flowgraph import Graph, Ledger, Role
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.emulator import Emulator, Reply
from flowgraph.tools import CODER, READ_ONLY

KEY = "sk-test-workspaces"
FAST, SLOW = "claude-haiku-5-5", "claude-opus-5-5"


def project(root: Path, git: bool) -> Path:
    root.mkdir()
    (root / "shared.txt").write_text("alpha\nbeta\n")
    (root / "app.py").write_text("x = 1\n")
    if git:
        run = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run([*run[:3], "init", "-q"], check=True)
        subprocess.run([*run, "add", "."], check=True)
        subprocess.run([*run, "commit", "-qm", "start"], check=True)
        (root / "app.py").write_text("x = 2\n")  # uncommitted: the nodes must still see it
    return root


def team() -> Graph:
    g = Graph("coders")
    g.node("left", Role("left", "You code.", model="haiku", tools=CODER), "work")
    g.node("right", Role("right", "You code.", model="opus", tools=CODER), "work")
    g.node("review", Role("review", "You review.", model="sonnet", tools=READ_ONLY), "review",
           after=["left", "right"])  # fmt: skip
    return g


def edit(path: str, old: str, new: str) -> Reply:
    return Reply.tool_use("Edit", {"file_path": path, "old_string": old, "new_string": new})


def run(tmp_path: Path, work: Path, left: list[object], right: list[object]) -> Ledger:
    script = {FAST: left, SLOW: [Reply.tool_use("Bash", {"command": "sleep 0.3"}), *right],
              "claude-sonnet-5-5": ["reviewed"]}  # fmt: skip
    with Emulator(script, api_key=KEY) as emu:
        team().run_sync(client=AnthropicModel(KEY, base_url=emu.base_url),
                        run_dir=tmp_path / "run", workspace=work)  # fmt: skip
    return Ledger.open(tmp_path / "run", graph="coders")


@pytest.mark.slow
@pytest.mark.parametrize("git", [False, True], ids=["copy", "git-worktree"])
def test_parallel_coders_editing_different_files_both_land(tmp_path: Path, git: bool) -> None:
    work = project(tmp_path / "project", git)
    ledger = run(tmp_path, work,
                 [edit("shared.txt", "alpha", "ALPHA"), "left done"],
                 [Reply.tool_use("Write", {"file_path": "new.py", "content": "y = 3\n"}),
                  edit("app.py", "x = 2" if git else "x = 1", "x = 9"), "right done"])  # fmt: skip
    doc = ledger.doc
    ledger.close()
    assert {n: r.status for n, r in doc.nodes.items()} == {
        "left": "passed", "right": "passed", "review": "passed",
    }  # fmt: skip
    assert (work / "shared.txt").read_text() == "ALPHA\nbeta\n"
    assert (work / "new.py").read_text() == "y = 3\n" and (work / "app.py").read_text() == "x = 9\n"
    assert doc.nodes["right"].changed_files == ["app.py", "new.py"]
    diff = (tmp_path / "run" / str(doc.nodes["left"].diff_file)).read_text()
    assert "-alpha\n+ALPHA\n" in diff
    assert not (tmp_path / "run" / "worktrees" / "left").exists()


@pytest.mark.slow
def test_two_coders_editing_the_same_lines_fail_the_later_one(tmp_path: Path) -> None:
    work = project(tmp_path / "project", git=False)
    ledger = run(tmp_path, work,
                 [edit("shared.txt", "alpha", "from left"), "left done"],
                 [edit("shared.txt", "alpha", "from right"), "right done"])  # fmt: skip
    doc = ledger.doc
    ledger.close()
    assert doc.nodes["left"].status == "passed"
    assert doc.nodes["right"].status == "failed"
    assert "changed shared.txt, which another node changed" in str(doc.nodes["right"].error)
    assert (work / "shared.txt").read_text() == "from left\nbeta\n"  # never overwritten
