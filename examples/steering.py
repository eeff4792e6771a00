"""Steering: a long-running auditor works through a project's dependencies one tool call at a
time; a person sends it a new instruction while it runs. The message reaches the node at its
next model turn (it is not restarted) and is recorded in the node's ledger record
(``steering``, with the turn that delivered it).

    flowgraph run examples/steering.py --run-dir runs/steer
    # meanwhile, in another terminal:
    flowgraph steer runs/steer audit "Skip the dev tools; focus on runtime dependencies."

From Python, the handle that ``Graph.start`` returns does the same (see the bottom of this
file): ``run = graph.start(run_dir=...); run.steer("audit", "..."); result = await run``.

Without ANTHROPIC_API_KEY the auditor is a SCRIPTED model (canned replies, no API calls, no
key needed) that takes 3 seconds a turn, about 20 s in all: time to type the steer command in
another terminal. Set STEERING_DELAY=SECONDS for another pace; ``python examples/steering.py
--delay 0.5`` steers itself and takes its own pace. Its last reply says which instruction it
followed.
"""

import argparse
import asyncio
import os
from typing import Any

from flowgraph import Context, Graph, Role
from flowgraph.model import ModelRequest
from flowgraph.testing import ScriptedModel, tool_call

DEPENDENCIES = ["pydantic", "typer", "anthropic", "networkx", "ruff", "mypy"]


async def note(package: str, finding: str, ctx: Context) -> str:
    """Append one finding about a package to audit.md in the workspace."""
    ctx.workspace.mkdir(parents=True, exist_ok=True)
    with (ctx.workspace / "audit.md").open("a") as fh:
        fh.write(f"- {package}: {finding}\n")
    return "noted"


auditor = Role("auditor", "You audit dependencies; note one finding per package.", tools=[note])


def summary(request: ModelRequest) -> str:
    """The scripted last turn: mention the steering message if one arrived."""
    told = [
        block["text"]
        for message in request.messages
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "text" and "New instruction from a person" in block["text"]
    ]
    return "Audit done." + (f" Followed: {told[-1].split(': ', 1)[1]}" if told else "")


turns = [tool_call("note", package=p, finding="pinned, no known CVEs") for p in DEPENDENCIES]
SCRIPTED_REPLIES: dict[str, list[Any]] = {"audit": [*turns, summary]}
DELAY = float(os.environ.get("STEERING_DELAY", "3"))  # seconds per scripted turn
client = (
    None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES, delay=DELAY)
)

graph = Graph("steering", inputs={"project": "flowgraph"}, client=client)
graph.node("audit", auditor, "Audit the dependencies of {project}: " + ", ".join(DEPENDENCIES))


async def main(delay: float) -> None:
    if client is not None:
        client.delay = delay
    run = graph.start(run_dir="runs/steering_example")
    await asyncio.sleep(2 * delay if client else 10)  # the auditor is a turn or two in
    run.steer("audit", "Skip the dev tools; focus on runtime dependencies.")
    result = await run
    print(result["audit"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the auditor and steer it after two turns.")
    parser.add_argument("--delay", type=float, default=DELAY, help="seconds per scripted turn")
    asyncio.run(main(parser.parse_args().delay))
