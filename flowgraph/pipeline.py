"""A pipeline file: a small YAML file that names the order of a directory of Claude Code agent
files, so ``flowgraph run pipeline.yaml`` runs them as a graph::

    name: feature_team
    agents: .claude/agents        # relative to this file
    inputs: [task]                # the default
    pipeline:
      - architect                 # each step runs after the whole step before it
      - [backend, frontend]       # a list runs in parallel
      - {agent: reviewer, task: "Review the change for: {task}"}

A step's task is ``{task}`` unless it says otherwise; the outputs of the step before are added
to it. The graph's default model (for ``model: inherit``) is the file's ``model``, else
``ANTHROPIC_MODEL``, else ``sonnet``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from flowgraph.declare.agents import load_agents
from flowgraph.errors import GraphError
from flowgraph.graph import Graph

__all__ = ["GRAPH_MODEL_ENV", "load_pipeline"]

GRAPH_MODEL_ENV = "ANTHROPIC_MODEL"


def load_pipeline(path: str | Path) -> Graph:
    """The graph a pipeline file describes."""
    file = Path(path)
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GraphError(f"cannot read pipeline file {file}: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("pipeline"), list):
        raise GraphError(f"{file} needs a 'pipeline:' list of agent names, in the order they run")
    roles = load_agents(file.parent / str(spec.get("agents", ".claude/agents")))
    model = str(spec.get("model") or os.environ.get(GRAPH_MODEL_ENV) or "sonnet")
    inputs = spec.get("inputs", ["task"])
    graph = Graph(str(spec.get("name") or file.stem), model=model, inputs=inputs)
    before: list[str] = []
    for stage in spec["pipeline"]:
        here = [_add(graph, file, roles, step, before) for step in _steps(stage)]
        before = here
    return graph


def _steps(stage: Any) -> list[Any]:
    return list(stage) if isinstance(stage, list) else [stage]


def _add(graph: Graph, file: Path, roles: dict[str, Any], step: Any, after: list[str]) -> str:
    entry = {"agent": step} if isinstance(step, str) else dict(step)
    agent = str(entry.get("agent", ""))
    if agent not in roles:
        raise GraphError(
            f"{file}: pipeline step {agent!r} has no agent file; agents are: {', '.join(roles)}"
        )
    name = str(entry.get("name") or agent.replace("-", "_"))  # node names take no "-"
    graph.node(name, roles[agent], str(entry.get("task") or "{task}"), after=after)
    return name
