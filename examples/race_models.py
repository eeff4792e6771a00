"""Race: the same coding task on haiku, on sonnet, and on sonnet with an opus advisor, in
parallel, each in its own copy of the workspace. A check function runs the answer against a
few test cases; the first contender whose code passes wins (the others are cancelled) and its
output goes on. The ledger keeps every contender as ``slugify.<role name>`` with its
``check_passed``, and the winner on the ``slugify`` record.

    flowgraph run examples/race_models.py --run-dir runs/race_models

Without ANTHROPIC_API_KEY the contenders are a SCRIPTED model (canned replies, no API calls, no
key needed): haiku's slugify keeps punctuation and fails the check, the sonnet ones pass.
"""

import asyncio
import os
import sys

from flowgraph import Context, Graph, Role
from flowgraph.advisor import Advisor
from flowgraph.testing import ScriptedModel

TASK = "Write a Python function slugify(title: str) -> str. Reply with only the code."
TESTS = """
assert slugify("Hello, World!") == "hello-world"
assert slugify("  Resumable   workflows ") == "resumable-workflows"
"""


async def passes_tests(output: str, ctx: Context) -> bool:
    """Run the contender's code and the tests in a fresh interpreter (never in ours)."""
    code = output.strip().removeprefix("```python").removesuffix("```")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code + TESTS, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        return await asyncio.wait_for(proc.wait(), timeout=10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()


CODER = "You write small, correct Python functions."
haiku = Role("haiku", CODER, model="haiku")
sonnet = Role("sonnet", CODER, model="sonnet")
advised = Role("sonnet_advised", CODER, model="sonnet", advisor=Advisor(model="opus"))

SLOPPY = "def slugify(title):\n    return title.lower().replace(' ', '-')\n"
GOOD = (
    "import re\n\n\ndef slugify(title: str) -> str:\n"
    "    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')\n"
)
SCRIPTED_REPLIES = {
    "slugify.haiku": [SLOPPY],
    "slugify.sonnet": [GOOD],
    "slugify.sonnet_advised": [GOOD],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("race_models", client=client)
graph.race("slugify", [haiku, sonnet, advised], TASK, check=passes_tests)

if __name__ == "__main__":
    result = graph.run_sync()
    print(f"winner: {result['slugify']['winner']}\n{result['slugify']['output']}")
