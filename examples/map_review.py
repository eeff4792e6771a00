"""Map: a step lists the Python files of a package, then a reviewer role reviews each file,
at most three at a time. Each file is its own ledger record (``review[0]``, ``review[1]``...),
so a resume after a crash or a failed item reviews only the files that did not pass.

    flowgraph run examples/map_review.py --run-dir runs/map_review
    flowgraph run examples/map_review.py --input src=path/to/your/package

Without ANTHROPIC_API_KEY the reviewer is a SCRIPTED model (canned replies, no API calls, no
key needed); with a key it runs on haiku.
"""

import os
import re
from pathlib import Path

import flowgraph
from flowgraph import Context, Graph, Role
from flowgraph.model import ModelRequest
from flowgraph.testing import ScriptedModel

PATTERNS = Path(flowgraph.__file__).parent / "patterns"  # a small, real package to review


async def list_files(ctx: Context) -> list[dict[str, str]]:
    """Every .py file under the input directory, with its source, in a stable order."""
    files = sorted(Path(ctx.input["src"]).rglob("*.py"))
    root = Path(ctx.input["src"])
    return [{"path": p.relative_to(root).as_posix(), "code": p.read_text()} for p in files]


reviewer = Role(
    "reviewer",
    "You review Python code. Name the single most important problem, or say 'LGTM'.",
    model="haiku",
)


def scripted_review(request: ModelRequest) -> str:
    """A canned review that names the file it was given (the path is in the task)."""
    found = re.search(r"Review (\S+?):", str(request.messages[0]["content"]))
    return f"{found.group(1) if found else '?'}: LGTM (scripted review)"


# Every map item (review[0], review[1], ...) falls back to the default reply.
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(default=scripted_review)

graph = Graph("map_review", inputs={"src": str(PATTERNS)}, client=client)
graph.node("files", list_files)
graph.map("review", reviewer, "Review {item[path]}:\n\n{item[code]}", over="files", concurrency=3)

if __name__ == "__main__":
    for line in graph.run_sync().outputs["review"]:
        print(line)
