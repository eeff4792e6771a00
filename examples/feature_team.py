"""A feature team: an architect plans, a backend and a frontend developer build in parallel,
a function step runs the tests, a tester reports and a reviewer gives a structured verdict.

    flowgraph run examples/feature_team.py --input feature="a slugify(title) function"

Without ANTHROPIC_API_KEY the roles are played by a SCRIPTED model (canned replies, no API
calls, no key needed): whatever feature you ask for, they build the slugify function below.
With a key, the same graph runs on real models (opus, sonnet, haiku). Either way the tools
really write files under <run dir>/workspace and the tests really run there.
"""

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from flowgraph import Context, Graph, NodeError, Role
from flowgraph.testing import ScriptedModel, tool_call


# -- tools: every path stays inside the run's workspace ---------------------------------------
def _inside(ctx: Context, path: str) -> Path:
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise ValueError(f"{path!r} is outside the workspace; use a relative path")
    return ctx.workspace / path


async def write_file(path: str, content: str, ctx: Context) -> str:
    """Create or replace a file in the workspace."""
    target = _inside(ctx, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return f"wrote {path}"


async def read_file(path: str, ctx: Context) -> str:
    """Read a file in the workspace."""
    return _inside(ctx, path).read_text()


# -- roles: each picks its own model -------------------------------------------------------
class Review(BaseModel):
    verdict: Literal["approve", "request_changes"]
    notes: list[str]


PROJECT = "Work in a Python project in your workspace; tests are unittest files in tests/."
architect = Role(
    "architect",
    f"You design features. {PROJECT} Write docs/design.md.",
    model="opus",
    tools=[write_file, read_file],
)
backend = Role(
    "backend",
    f"You implement library code with tests. {PROJECT}",
    model="sonnet",
    tools=[write_file, read_file],
)
frontend = Role(
    "frontend",
    f"You build the command-line interface. {PROJECT}",
    model="haiku",
    tools=[write_file, read_file],
)
tester = Role(
    "tester", f"You read tests and report gaps. {PROJECT}", model="haiku", tools=[read_file]
)
reviewer = Role(
    "reviewer", f"You review changes. {PROJECT}", model="opus", tools=[read_file], output=Review
)


# -- a function step: run the tests the roles wrote ----------------------------------------
async def run_tests(ctx: Context) -> dict[str, object]:
    ctx.workspace.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-B",
        "-m",
        "unittest",
        "discover",
        "-s",
        "tests",
        cwd=ctx.workspace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output = (await proc.communicate())[0].decode()
    finally:  # a timed-out or cancelled run must not leave the child running
        if proc.returncode is None:
            proc.kill()
    ran = int(m.group(1)) if (m := re.search(r"Ran (\d+) test", output)) else 0
    if proc.returncode or ran == 0:  # a failing run, or one that found no tests, fails the node
        raise NodeError(f"tests failed ({ran} ran):\n{output}")
    return {"passed": ran, "output": output}


# -- the graph ------------------------------------------------------------------------------
SLUG_PY = """import re


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
"""
TEST_PY = """import unittest

from slug import slugify


class SlugifyTest(unittest.TestCase):
    def test_lowercases_and_joins_words(self) -> None:
        self.assertEqual(slugify("Hello, World!"), "hello-world")
"""
CLI_PY = "import sys\n\nfrom slug import slugify\n\nprint(slugify(' '.join(sys.argv[1:])))\n"
# What each node "says" when no API key is set: real tool calls, then a final answer.
SCRIPTED_REPLIES: dict[str, list[Any]] = {
    "design": [
        tool_call("write_file", path="docs/design.md", content="slug.py: slugify(); cli.py\n"),
        "slugify(title) in slug.py, tested in tests/; a CLI in cli.py.",
    ],
    "api": [
        tool_call("write_file", path="slug.py", content=SLUG_PY),
        tool_call("write_file", path="tests/test_slug.py", content=TEST_PY),
        "Added slug.slugify with a test.",
    ],
    "cli": [tool_call("write_file", path="cli.py", content=CLI_PY), "Added cli.py."],
    "report": [tool_call("read_file", path="tests/test_slug.py"), "One test; add unicode cases."],
    "review": [json.dumps({"verdict": "approve", "notes": ["small, clear and tested"]})],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph(
    "feature_team", model="sonnet", inputs={"feature": "a slugify(title) function"}, client=client
)
design = graph.node("design", architect, "Design {feature}.")
api = graph.node("api", backend, "Implement {feature} per this design: {design}", after=[design])
cli = graph.node("cli", frontend, "Add a CLI for {feature}: {design}", after=[design])
tests = graph.node("tests", run_tests, after=[api, cli], timeout=120)
report = graph.node("report", tester, "Tests passed: {tests.passed}. Report gaps.", after=[tests])
graph.node("review", reviewer, "Review {feature}. Tester says: {report}", after=[report])

if __name__ == "__main__":
    print(graph.run_sync(run_dir="runs/feature_team_example").outputs["review"])
