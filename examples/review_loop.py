"""Bounded review loop: a writer drafts release notes, an editor answers with a structured
``Verdict``; "changes requested" sends the draft back to the writer with the notes attached,
at most three rounds. Every round is its own ledger record (``edit.review1``,
``edit.revise2``, ``edit.review2``...), so a resume never repeats a finished round.

    flowgraph run examples/review_loop.py --run-dir runs/review_loop

Without ANTHROPIC_API_KEY both roles are a SCRIPTED model (canned replies, no API calls, no
key needed): the editor asks for one change, then approves the revision.
"""

import json
import os

from pydantic import BaseModel

from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel


class Verdict(BaseModel):
    approved: bool
    notes: str


writer = Role("writer", "You write short, concrete release notes for developers.", model="haiku")
editor = Role(
    "editor",
    "You edit release notes: approve them only if every item says what changed for the user.",
    model="sonnet",
    output=Verdict,
)

SCRIPTED_REPLIES = {
    "notes": ["- Faster resume.\n- Misc fixes."],
    "edit.review1": [json.dumps({"approved": False, "notes": "Say what 'misc fixes' fixed."})],
    "edit.revise2": [
        "- Resume skips passed map items.\n- `flowgraph steer` reaches pending nodes."
    ],
    "edit.review2": [json.dumps({"approved": True, "notes": "Clear and specific."})],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("review_loop", inputs={"version": "1.4.0"}, client=client)
notes = graph.node("notes", writer, "Write the release notes for version {version}.")
graph.review_loop(
    "edit",
    editor,
    "Edit these release notes (round {round}):\n{work}",
    work=notes,
    max_rounds=3,
)

if __name__ == "__main__":
    edit = graph.run_sync().outputs["edit"]
    print(f"approved after {edit['rounds']} round(s):\n{edit['work']}")
