"""A cheap executor with a strong advisor: a haiku coder consults opus at the one hard decision.

    flowgraph run examples/advisor_team.py --input bug="median() is wrong for even lengths"
    flowgraph cost <run dir>      # the advisor's tokens and USD, apart from the executor's

What it shows: a ``Role`` whose executor model is haiku and whose ``Advisor`` is opus, in
``mode="native"`` (Anthropic's ``advisor_20260301`` server tool): the coder reads the code,
consults the advisor once before choosing a fix, and answers; a haiku reviewer checks the fix.
The advisor's tokens are billed at opus rates and recorded per consult in the ledger.

Without ANTHROPIC_API_KEY every reply is SCRIPTED: the module starts flowgraph's Messages-API
emulator on 127.0.0.1 in a background thread and the real ``anthropic`` SDK talks to it, so the
run is offline, free and always the same (the emulator runs the consult, counts tokens and
reports the advisor's ``usage.iterations`` like the API). With a key the same graph runs on the
real models.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from flowgraph import Graph, Role
from flowgraph.advisor import Advisor
from flowgraph.anthropic_model import AnthropicModel
from flowgraph.testing.emulator import Emulator, Reply

BUGGY = """def median(xs: list[float]) -> float:
    xs.sort()
    return xs[len(xs) // 2]
"""


async def read_source(path: str) -> str:
    """Read a source file of the project."""
    if path != "stats.py":
        raise ValueError(f"no file {path!r}; the project has stats.py")
    return BUGGY


coder = Role(
    "coder",
    "You fix bugs in a small Python project. Read the code before changing it; answer with "
    "the fixed function in a ```python block and one sentence on why.",
    model="haiku",
    tools=[read_source],
    advisor=Advisor(model="opus", max_uses=2, mode="native"),
)
reviewer = Role(
    "reviewer",
    "You review a bug fix. Reply APPROVE or REQUEST_CHANGES, then one line of reasons.",
    model="haiku",
    advisor=None,
)

# -- the offline script: what each model "says" when no API key is set ------------------------
FIX = """```python
def median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
```
Even lengths average the two middle values, and sorting a copy leaves the caller's list alone."""
ADVICE = (
    "Two defects, not one: even lengths must average the two middle values, and xs.sort() "
    "mutates the caller's list. Use sorted(xs) and branch on len % 2; raise on an empty list "
    "only if the callers expect it."
)


def _system(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)


def haiku_script(body: dict[str, Any]) -> Reply:
    """The executor's replies: by role (system prompt) and turn (assistant messages so far)."""
    if "review a bug fix" in _system(body):
        return Reply.text("APPROVE: handles even lengths and no longer mutates its input.")
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn == 0:
        return Reply.tool_use("read_source", {"path": "stats.py"}, text="Reading the code.")
    # The hard decision: patch the index, or rethink the function? Ask the advisor first.
    return Reply.consult(
        before="Sorting in place and indexing the middle: is fixing the index enough?",
        after=FIX,
        question="Is an index fix enough, or is there a second defect?",
    )


emulator: Emulator | None = None
if os.environ.get("ANTHROPIC_API_KEY"):
    client: AnthropicModel | None = None  # the real API (ANTHROPIC_BASE_URL is honoured)
else:
    emulator = Emulator({"claude-haiku-5-5": haiku_script, "claude-opus-5-5": lambda _: ADVICE})
    emulator.start()
    atexit.register(emulator.stop)
    client = AnthropicModel("offline-example-key", base_url=emulator.base_url)

graph = Graph(
    "advisor_team",
    model="haiku",
    inputs={"bug": "median() returns the wrong value for lists of even length"},
    client=client,
)
fix = graph.node("fix", coder, "Fix this bug in stats.py: {bug}")
graph.node("review", reviewer, "Review this fix for '{bug}':\n{fix}", after=[fix])

if __name__ == "__main__":
    result = graph.run_sync(run_dir="runs/advisor_team_example")
    print(result.outputs["fix"], "\n\nreviewer:", result.outputs["review"])
