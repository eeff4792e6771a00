"""Tests for examples/: each example loads like `flowgraph run FILE` loads it and runs offline."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import pytest

from flowgraph import Graph
from flowgraph.testing import ScriptedModel

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_fresh = itertools.count()


def _load(name: str) -> ModuleType:
    """Execute examples/<name>.py as a new module (the client is chosen at import time)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}_{next(_fresh)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered like `flowgraph run` does, so pydantic can resolve the module's annotations.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


@pytest.mark.parametrize("name", ["minimal", "feature_team"])
def test_example_holds_one_graph_with_a_scripted_client_offline(offline: None, name: str) -> None:
    module = _load(name)
    graphs = [v for v in vars(module).values() if isinstance(v, Graph)]
    # `flowgraph run FILE` picks the file's only Graph.
    assert graphs == [module.graph]
    assert isinstance(module.graph.client, ScriptedModel)
    module.graph.validate()


@pytest.mark.parametrize("name", ["minimal", "feature_team"])
def test_example_uses_the_real_api_when_a_key_is_set(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-used")
    assert _load(name).graph.client is None


def test_minimal_example_runs_offline_to_passed(offline: None, tmp_path: Path) -> None:
    result = _load("minimal").graph.run_sync(run_dir=tmp_path / "run")

    assert result.status == "passed", result.errors
    assert list(result.statuses) == ["draft", "critique"]
    assert result["critique"].startswith("Weakest:")


def test_feature_team_example_builds_and_tests_in_its_workspace(
    offline: None, tmp_path: Path
) -> None:
    result = _load("feature_team").graph.run_sync(run_dir=tmp_path / "run")

    assert result.status == "passed", result.errors
    assert set(result.statuses.values()) == {"passed"}
    workspace = tmp_path / "run" / "workspace"
    for written in ["docs/design.md", "slug.py", "tests/test_slug.py", "cli.py"]:
        assert (workspace / written).is_file(), written
    assert result["tests"]["passed"] == 1
    assert result["review"]["verdict"] == "approve"


def test_agent_files_example_runs_its_agent_roles_offline(offline: None, tmp_path: Path) -> None:
    module = _load("agent_files")
    assert [t.name for t in module.roles["architect"].tool_list] == ["Read", "Grep", "Glob"]
    work = tmp_path / "repo"
    work.mkdir()
    result = module.graph.run_sync({"task": "notes"}, run_dir=tmp_path / "run", workspace=work)
    assert result.ok and result["review"] == "no problems found"
    assert (work / "NOTES.md").read_text() == "due dates\n"


def test_agent_files_pipeline_names_the_order() -> None:
    from flowgraph.pipeline import load_pipeline

    graph = load_pipeline(EXAMPLES / "agent_files" / "pipeline.yaml")
    valid = graph.validate()
    assert list(valid.order) == ["architect", "backend", "security_reviewer"]
