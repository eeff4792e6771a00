"""The tutorial's feature team (docs/tutorial.md builds it a section at a time): an architect
plans, a backend and a frontend developer build in parallel, a tester runs the code and a
reviewer gives a structured verdict.

    flowgraph run examples/tutorial_team.py --run-dir runs/tutorial
    python examples/tutorial_team.py

Without ANTHROPIC_API_KEY every role is played by a SCRIPTED model (canned replies, no API
calls, no key needed); with a key the same graph runs on real models. The comments
``--8<-- [start:NAME]`` mark the sections docs/tutorial.md includes, so the page shows exactly
the code that tests/test_docs.py runs.
"""

# --8<-- [start:architect]
from pydantic import BaseModel

from flowgraph import Context, Graph, Role


class Plan(BaseModel):
    """What the architect hands the builders and the tester."""

    module: str  # the library module's file name, e.g. "slug.py"
    function: str  # the function's name
    examples: dict[str, str]  # input -> expected output


architect = Role(
    "architect",
    "You design small Python functions: name the module and the function, and give examples.",
    model="opus",
    output=Plan,  # the reply is validated; an invalid one goes back to the model to fix
)
# --8<-- [end:architect]


# --8<-- [start:builders]
async def write_file(path: str, content: str, ctx: Context) -> str:
    """Create or replace a file in your workspace."""
    target = (ctx.workspace / path).resolve()
    if not target.is_relative_to(ctx.workspace.resolve()):
        raise ValueError(f"{path!r} is outside the workspace; use a relative path")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return f"wrote {path}"


backend = Role("backend", "You write small, clear Python library code.", tools=[write_file])
frontend = Role("frontend", "You write command-line front ends.", model="haiku", tools=[write_file])
# --8<-- [end:builders]


# --8<-- [start:tester]
import asyncio
import json
import sys

from flowgraph import NodeError

PROBE = """import json, sys
from {module} import {function} as f
print(json.dumps([f(x) for x in json.load(sys.stdin)]))
"""


async def run_examples(ctx: Context) -> dict[str, int]:
    """Call the backend's function on the architect's examples, in a fresh interpreter."""
    plan = ctx.outputs["plan"]  # a structured output arrives as a plain dict
    code = PROBE.format(module=plan["module"].removesuffix(".py"), function=plan["function"])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        cwd=ctx.workspace,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(json.dumps(list(plan["examples"])).encode())
    if proc.returncode:
        raise NodeError(f"the code failed:\n{out.decode()}")
    expected = list(plan["examples"].values())
    wrong = [
        (want, got) for want, got in zip(expected, json.loads(out), strict=True) if want != got
    ]
    if wrong:
        raise NodeError(f"wrong answers (expected, got): {wrong}")
    return {"passed": len(expected)}


# --8<-- [end:tester]


# --8<-- [start:reviewer]
from flowgraph.tools import READ_ONLY


class Review(BaseModel):
    approved: bool
    notes: list[str]


reviewer = Role(
    "reviewer", "You review Python code for clarity.", model="opus", tools=READ_ONLY, output=Review
)
# --8<-- [end:reviewer]

# --8<-- [start:offline]
import os

from flowgraph.testing import ScriptedModel, tool_call

SLUG_PY = """import re


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
"""
CLI_PY = "import sys\n\nfrom slug import slugify\n\nprint(slugify(' '.join(sys.argv[1:])))\n"
PLAN = {
    "module": "slug.py",
    "function": "slugify",
    "examples": {"Hello, World!": "hello-world", "  Flowgraph rocks ": "flowgraph-rocks"},
}
SCRIPTED_REPLIES = {  # what each node "says", turn by turn, by node name
    "plan": [json.dumps(PLAN)],
    "api": [tool_call("write_file", path="slug.py", content=SLUG_PY), "Wrote slug.py."],
    "cli": [tool_call("write_file", path="cli.py", content=CLI_PY), "Wrote cli.py."],
    "review": [
        tool_call("Read", file_path="slug.py"),
        json.dumps({"approved": True, "notes": ["one clear regular expression"]}),
    ],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)
# --8<-- [end:offline]

# --8<-- [start:graph]
graph = Graph(
    "tutorial_team",
    model="sonnet",  # the default: roles without a model of their own inherit it
    inputs={"feature": "a slugify(title) function for URLs"},
    client=client,  # None: the real API through the anthropic SDK
)
plan = graph.node("plan", architect, "Design {feature}.")
api = graph.node("api", backend, "Write {plan.module} with a function {plan.function}.")
cli = graph.node("cli", frontend, "Write cli.py: it prints {plan.function} of its arguments.")
tests = graph.node("tests", run_examples)
review = graph.node("review", reviewer, "Review {plan.module}. The tester says: {tests}")
plan >> [api, cli]  # api and cli run in parallel once plan passes
[api, cli] >> tests
tests >> review
# --8<-- [end:graph]

# --8<-- [start:run]
if __name__ == "__main__":
    result = graph.run_sync(run_dir="runs/tutorial_example")
    print(result.status)
    print(result["review"])
# --8<-- [end:run]
