"""Long-horizon checklist: an initializer lists six endpoints to build; each run takes the
next few unchecked ones, a developer builds each, and only the check flips an item to passing.
The items live in the ledger's ``features`` (``{"name": ..., "passes": ...}``), each item's
work is a record ``endpoints[<item>]``, so the next process — or the next day — picks up where
this one stopped.

    flowgraph run examples/checklist.py --run-dir runs/checklist --max-items 2
    # the run ends `incomplete` (exit 0): 2 of 6 items pass
    flowgraph resume runs/checklist --max-items 2   # the next two; again for the last two

Without --max-items a run takes on every item left. Without ANTHROPIC_API_KEY the developer is
a SCRIPTED model (canned replies, no API calls, no key needed).
"""

import os

from flowgraph import Context, Graph, Role
from flowgraph.model import ModelRequest
from flowgraph.testing import ScriptedModel

ENDPOINTS = [
    "GET /todos",
    "POST /todos",
    "GET /todos/{id}",
    "PATCH /todos/{id}",
    "DELETE /todos/{id}",
    "GET /health",
]


async def list_endpoints(ctx: Context) -> list[str]:
    """The initializer: runs once per run directory; its list becomes the checklist."""
    return ENDPOINTS


async def handles(item: str, output: str, ctx: Context) -> str | None:
    """The check: None passes the item; a string fails it, and the next run tries again."""
    method, path = item.split(" ", 1)
    if f'@app.{method.lower()}("{path}")' not in output:
        return f"expected a route decorator for {item}"
    return None


developer = Role("developer", "You write FastAPI route handlers; reply with only the code.")


def scripted_route(request: ModelRequest) -> str:
    """A canned handler for whichever endpoint the task names."""
    item = request.node.split("[", 1)[1].rstrip("]")  # the record is endpoints[<item>]
    method, path = item.split(" ", 1)
    return f'@app.{method.lower()}("{path}")\nasync def handler():\n    ...\n'


client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(default=scripted_route)

graph = Graph("checklist", client=client)
graph.checklist(
    "endpoints",
    list_endpoints,
    developer,
    task="Implement the endpoint {item} of a todo API.",
    check=handles,
)

if __name__ == "__main__":
    print(graph.run_sync(run_dir="runs/checklist_example", max_items=2).status)
