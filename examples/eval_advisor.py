"""An offline eval suite: SCRIPTED models that show the shape of a real comparison.

    flowgraph eval examples/eval_advisor.py

Nothing here measures real model quality: the "models" are a script. The cheap executor solves
the easy tasks and gets the hard ones wrong unless an advisor tells it the way; the strong model
solves everything but costs more and answers more slowly. The fourth configuration routes: a
classifier on haiku sends each task to haiku or to opus (scripted to spot the hard ones). Point
``client`` at a real endpoint (delete it: the Anthropic API is used when ANTHROPIC_API_KEY is
set) and write real tasks and checks to run the comparison the advisor's guidance asks for.
"""

from __future__ import annotations

import asyncio
import json

from flowgraph import Graph, ModelRequest, ModelResponse, Role, RunResult, Usage
from flowgraph.evals import DEFAULT_CONFIGS, Config, Suite, Task

SPEED = {"claude-haiku-5-5": 0.01, "claude-opus-5-5": 0.04}  # seconds per call, scripted


class ScriptedSolver:
    """A scripted stand-in for real models (see the module docstring)."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(SPEED.get(request.model, 0.02))
        text = json.dumps([request.system, list(request.messages)], default=str)
        problem = str(request.messages[0]["content"])
        numbers = [int(w) for w in problem.replace(".", " ").split() if w.isdigit()]
        right = str(sum(numbers))
        if request.node.endswith(".classify"):  # the routed configuration's classifier
            label = "hard" if "hard sum" in problem else "easy"
            content = [{"type": "text", "text": label}]
            stop = "end_turn"
        elif request.purpose == "advisor":
            content = [{"type": "text", "text": f"Carry the one: the sum is {right}."}]
            stop = "end_turn"
        elif "opus" in request.model or "hard" not in problem or "Carry the one" in text:
            content = [{"type": "text", "text": right}]
            stop = "end_turn"
        elif any(t.get("name") == "advisor" for t in request.tools) and "asked" not in text:
            content = [{"type": "tool_use", "id": f"toolu_{len(text)}", "name": "advisor",
                        "input": {"question": "asked: how do I add these?"}}]  # fmt: skip
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": str(sum(numbers) - 1)}]  # the cheap model's slip
            stop = "end_turn"
        usage = Usage(len(text) // 4, len(json.dumps(content)) // 4)
        return ModelResponse(content, stop, request.model, usage)


def graph(config: Config) -> Graph:
    g = Graph("adder", model=config.model, inputs=["problem"])
    solver = Role("solver", "Add the numbers; reply with the sum only.", advisor=config.advisor)
    if config.routes:  # a cheap classifier picks the solver's model, task by task
        triager = Role("triager", "Is this sum easy or hard?", model="haiku", advisor=None)
        g.route_model("solve", solver, "{problem}", classifier=triager, models=config.routes)
    else:
        g.node("solve", solver, "{problem}")
    return g


def task(name: str, problem: str) -> Task:
    answer = str(sum(int(w) for w in problem.replace(".", " ").split() if w.isdigit()))

    def check(result: RunResult) -> bool:
        return bool(result.ok and str(result.outputs["solve"]).strip() == answer)

    return Task(name, {"problem": problem}, check)


def _tasks() -> list[Task]:
    found = []
    for i in range(10):
        kind = "hard" if i % 5 in (1, 3) else "easy"
        found.append(task(f"{kind}-{i}", f"A {kind} sum: {17 + i} {25 * i} {3 + i}."))
    return found


suite = Suite(
    "adder",
    graph=graph,
    tasks=_tasks(),
    configs=(*DEFAULT_CONFIGS, Config("routed", routes={"easy": "haiku", "hard": "opus"})),
    client=ScriptedSolver,
    label="SCRIPTED models (offline): the shape of a real comparison, not a measurement of "
    "model quality",
)
