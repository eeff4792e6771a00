"""Claude Code agent files as roles, and a directory of them run as a pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flowgraph import Ledger, Role
from flowgraph.declare.agents import load_agents
from flowgraph.errors import GraphError
from flowgraph.testing.emulator import Emulator, Reply

KEY = "sk-test-agents"

ARCHITECT = """---
name: architect
description: Designs the change. Use first.
tools: Read, Grep, Glob
model: opus
---
You are the architect. Read the code and write a plan.
"""
BACKEND = """---
name: backend
description: Builds it.
tools: [Read, Write, Edit, Bash]
model: inherit
---
You build what the plan says.
"""
REVIEWER = """---
name: security-reviewer
description: Reviews for security.
tools: Read, Grep
---
You review the change.
"""


def agents_dir(root: Path) -> Path:
    folder = root / ".claude" / "agents"
    folder.mkdir(parents=True)
    for name, text in [("architect", ARCHITECT), ("backend", BACKEND),
                       ("security-reviewer", REVIEWER)]:  # fmt: skip
        (folder / f"{name}.md").write_text(text)
    return folder


def tool_names(role: Role) -> list[str]:
    return [t.name for t in role.tool_list]


def test_an_agent_file_becomes_a_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDE_CODE_SUBAGENT_MODEL", raising=False)
    roles = load_agents(agents_dir(tmp_path))
    assert sorted(roles) == ["architect", "backend", "security-reviewer"]
    architect = roles["architect"]
    assert architect.instructions == "You are the architect. Read the code and write a plan."
    assert (architect.model, tool_names(architect)) == ("opus", ["Read", "Grep", "Glob"])
    assert (roles["backend"].model, tool_names(roles["backend"])) == (
        "inherit", ["Read", "Write", "Edit", "Bash"],
    )  # fmt: skip


def test_inherit_follows_the_subagent_model_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CODE_SUBAGENT_MODEL", "haiku")
    role = Role.from_file(agents_dir(tmp_path) / "backend.md")
    assert role.model == "haiku"


def test_an_unknown_tool_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    file = tmp_path / "web.md"
    file.write_text("---\nname: web\ntools: Read, WebFetch\n---\nBrowse.\n")
    with pytest.raises(GraphError, match=r"unknown tool WebFetch; .* Read, Grep, Glob, Write"):
        Role.from_file(file)


def test_a_file_without_front_matter_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "plain.md"
    file.write_text("Just a prompt.\n")
    with pytest.raises(GraphError, match="has no front matter"):
        Role.from_file(file)


def test_a_directory_of_agent_files_runs_as_a_pipeline(
    tmp_path: Path, cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    agents_dir(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(
        "name: secure_feature\npipeline:\n  - architect\n  - backend\n"
        "  - {agent: security-reviewer, task: 'Review the change for: {task}'}\n"
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("print('hi')\n")
    monkeypatch.setenv("CLAUDE_CODE_SUBAGENT_MODEL", "haiku")
    script = {
        "claude-opus-5-5": [Reply.tool_use("Read", {"file_path": "app.py"}), "plan: add x"],
        "claude-haiku-5-5": [
            Reply.tool_use("Write", {"file_path": "x.py", "content": "x = 1\n"}),
            "built x",
        ],
        "claude-sonnet-5-5": ["looks safe"],
    }
    with Emulator(script, api_key=KEY) as emu:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.base_url)
        run = tmp_path / "run"
        done = cli("run", str(tmp_path / "pipeline.yaml"), "--input", "task=add x",
                   "--run-dir", str(run), "--workspace", str(project))  # fmt: skip
        assert done.returncode == 0, done  # type: ignore[attr-defined]
        reviewed = emu.requests[-1].body["messages"][0]["content"]
    doc = Ledger.read(run)
    assert [doc.nodes[n].status for n in ("architect", "backend", "security_reviewer")] == [
        "passed"
    ] * 3
    assert doc.nodes["backend"].model == "claude-haiku-5-5"
    assert (project / "x.py").read_text() == "x = 1\n"
    assert "Review the change for: add x" in str(reviewed) and "built x" in str(reviewed)
