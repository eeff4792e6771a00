"""Roles from Claude Code agent files: `.claude/agents/*.md` loaded as flowgraph roles, run in
the order the graph gives, each with the tools its front matter lists (architect and reviewer
read-only, backend a coder in its own workspace copy, its Bash calls approved by a person).

    flowgraph run examples/agent_files.py --input task="add due dates" --workspace path/to/repo

Without ANTHROPIC_API_KEY it runs offline on a scripted model (clearly labelled), so the file
loads and runs anywhere.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from flowgraph import Graph
from flowgraph.declare.agents import load_agents
from flowgraph.testing import ScriptedModel, tool_call

roles = load_agents(Path(__file__).parent / "agent_files" / ".claude" / "agents")
backend = dataclasses.replace(roles["backend"], approve=["Bash"])  # a person approves each Bash

offline = None
if not os.environ.get("ANTHROPIC_API_KEY"):
    offline = ScriptedModel(
        {
            "plan": [tool_call("Glob", pattern="**/*"), "1. add NOTES.md"],
            "build": [tool_call("Write", file_path="NOTES.md", content="due dates\n"), "done"],
            "review": ["no problems found"],
        }
    )

graph = Graph("secure_change", model="sonnet", inputs=["task"], client=offline)
plan = graph.node("plan", roles["architect"], "Plan: {task}")
build = graph.node("build", backend, "Carry out the plan for: {task}", after=["plan"])
graph.node("review", roles["security-reviewer"], "Review the change for: {task}", after=["build"])
