"""The built-in coding tools: Claude Code's names and parameters, permission profiles, and
confinement to the node's workspace (``..``, absolute paths and symlinks out are refused)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Context, Graph, Ledger, Role, Tool
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.emulator import Emulator, Reply
from flowgraph.tools import BUILTIN, CODER, READ_ONLY

KEY = "sk-test-tools"


def ctx_for(workspace: Path) -> Context:
    return Context("n", {}, {}, None, workspace)


def call(name: str, workspace: Path, **arguments: Any) -> tuple[str, bool]:
    result = asyncio.run(Tool(BUILTIN[name]).call(arguments, ctx_for(workspace)))
    return result.content, result.is_error


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A workspace inside a directory that holds a file the tools must never touch."""
    (tmp_path / "secret.txt").write_text("outside\n")
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "app.py").write_text("def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n")
    (work / "notes.md").write_text("one\ntwo\nthree\n")
    (work / "escape").symlink_to(tmp_path / "secret.txt")
    (work / "out").symlink_to(tmp_path)
    return work


def snapshot(root: Path) -> dict[str, bytes]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_tools_take_claude_code_parameter_names() -> None:
    schemas = {n: Tool(f).input_schema["properties"] for n, f in BUILTIN.items()}
    assert set(schemas["Read"]) == {"file_path", "offset", "limit"}
    assert {"file_path", "content"} == set(schemas["Write"])
    assert {"file_path", "old_string", "new_string", "replace_all"} == set(schemas["Edit"])
    assert {"pattern", "path", "glob", "output_mode", "-i", "-n", "-A", "-B", "-C"} <= set(
        schemas["Grep"]
    )
    assert set(schemas["Glob"]) == {"pattern", "path"}
    assert set(schemas["Bash"]) == {"command", "timeout"}


def test_read_numbers_lines_and_takes_a_range(box: Path) -> None:
    text, error = call("Read", box, file_path="notes.md", offset=2, limit=1)
    assert not error
    assert text.splitlines()[0] == "     2\ttwo"
    assert "1 more lines; Read with offset=3" in text


def test_read_truncates_a_large_file_with_a_note(box: Path) -> None:
    (box / "big.txt").write_text("x\n" * 5000)
    text, _ = call("Read", box, file_path="big.txt")
    assert "  2000\tx" in text and "3000 more lines" in text


def test_edit_replaces_one_exact_match_and_refuses_an_ambiguous_one(box: Path) -> None:
    text, error = call("Edit", box, file_path="src/app.py", old_string="a + b", new_string="a+b")
    assert not error and "return a+b" in (box / "src/app.py").read_text()
    (box / "twice.txt").write_text("x x")
    text, error = call("Edit", box, file_path="twice.txt", old_string="x", new_string="y")
    assert error and "occurs 2 times" in text and (box / "twice.txt").read_text() == "x x"
    _, error = call("Edit", box, file_path="twice.txt", old_string="x", new_string="y",
                    replace_all=True)  # fmt: skip
    assert not error and (box / "twice.txt").read_text() == "y y"


def test_grep_finds_content_with_context_globs_and_counts(box: Path) -> None:
    assert call("Grep", box, pattern=r"def \w+")[0] == "src/app.py"
    text, _ = call("Grep", box, pattern="RETURN", output_mode="content", **{"-i": True, "-B": 1})
    assert text.splitlines() == ["src/app.py-1-def add(a, b):", "src/app.py:2:    return a + b"]
    assert call("Grep", box, pattern="o", glob="*.{md,txt}", output_mode="count")[0] == (
        "notes.md:2"
    )
    # the symlinks out of the workspace are not followed
    assert call("Grep", box, pattern="outside")[0] == "No matches found"


def test_glob_lists_matching_files(box: Path) -> None:
    assert call("Glob", box, pattern="**/*.py")[0] == "src/app.py"
    assert call("Glob", box, pattern="*.md")[0] == "notes.md"


@pytest.mark.parametrize("tool", ["Read", "Write", "Edit", "Bash", "Grep", "Glob"])
@pytest.mark.parametrize("where", ["../secret.txt", "/etc/passwd", "escape", "out/secret.txt"])
def test_every_way_out_of_the_workspace_is_refused(box: Path, tool: str, where: str) -> None:
    before = snapshot(box.parent)
    args: dict[str, Any] = {
        "Read": {"file_path": where},
        "Write": {"file_path": where, "content": "pwned"},
        "Edit": {"file_path": where, "old_string": "outside", "new_string": "pwned"},
        "Bash": {"command": f"cat {where} && echo pwned > {where}"},
        "Grep": {"pattern": "outside", "path": where},
        "Glob": {"pattern": "*", "path": where},
    }[tool]
    if tool == "Glob" and where in ("escape", "out/secret.txt"):
        args = {"pattern": "*", "path": "out"}
    text, error = call(tool, box, **args)
    assert error, text
    assert "outside" in text or "'..'" in text, text
    assert "pwned" not in text
    assert snapshot(box.parent) == before
    assert (box.parent / "secret.txt").read_text() == "outside\n"


def test_bash_runs_in_the_workspace_and_reports_the_exit_code(box: Path) -> None:
    text, error = call("Bash", box, command="pwd && ls src")
    assert not error and str(box.resolve()) in text and "app.py" in text and "exit code 0" in text
    text, error = call("Bash", box, command="echo broken >&2; exit 3")
    assert error and text.startswith("exit code 3") and "broken" in text


@pytest.mark.slow
def test_bash_times_out_in_about_its_timeout(box: Path) -> None:
    started = time.monotonic()
    text, error = call("Bash", box, command="sleep 30", timeout=500)
    took = time.monotonic() - started
    assert error and "timed out after 500 ms" in text
    assert 0.4 < took < 3.0


def test_bash_truncates_ten_megabytes_of_output(box: Path) -> None:
    text, error = call("Bash", box, command="head -c 10000000 /dev/zero | tr '\\0' x")
    assert not error and len(text) < 40_000 and "output truncated: 10000000 bytes" in text


def test_bash_cannot_see_api_keys(box: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    text, _ = call("Bash", box, command="env")
    assert "very-secret" not in text and "ghp-secret" not in text and "PATH=" in text


def test_profiles_name_the_claude_code_tools() -> None:
    assert [Tool(t).name for t in READ_ONLY] == ["Read", "Grep", "Glob"]
    assert [Tool(t).name for t in CODER] == ["Read", "Grep", "Glob", "Write", "Edit", "Bash"]


def test_a_read_only_role_that_tries_to_write_or_run_gets_a_tool_error(tmp_path: Path) -> None:
    """Over the real SDK against the emulator: the read-only role is never offered Write or
    Bash, and calling them anyway is a tool error the model reads."""
    work = tmp_path / "repo"
    work.mkdir(parents=True)
    (work / "a.txt").write_text("keep\n")
    replies = [
        Reply.tool_uses([("Write", {"file_path": "a.txt", "content": "x"}),
                         ("Bash", {"command": "rm a.txt"}), ("Read", {"file_path": "a.txt"})]),
        "done",
    ]  # fmt: skip
    with Emulator({"claude-sonnet-5-5": replies}, api_key=KEY) as emu:
        g = Graph("ro", model="sonnet")
        g.node("arch", Role("architect", "You read.", tools=READ_ONLY), "look")
        result = g.run_sync(client=AnthropicModel(KEY, base_url=emu.base_url),
                            run_dir=tmp_path / "run", workspace=work)  # fmt: skip
        offered = [t["name"] for t in emu.requests[0].body["tools"]]
        results = emu.requests[1].body["messages"][-1]["content"]
    assert result.ok and offered == ["Read", "Grep", "Glob"]
    assert [r.get("is_error", False) for r in results] == [True, True, False]
    assert "unknown tool 'Write'" in results[0]["content"]
    assert (work / "a.txt").read_text() == "keep\n"
    assert Ledger.read(tmp_path / "run").nodes["arch"].tool_calls == 3
