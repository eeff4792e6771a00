"""Routing: a cheap classifier on haiku sorts each question; easy ones are answered on haiku,
hard ones on opus. The branch not chosen is recorded ``not_taken`` (neither failed nor
pending), the choice is the ``triage`` record's ``route``, and a resume keeps it without asking
the classifier again. ``reply`` joins the branches: it runs after whichever one ran.

    flowgraph run examples/routing.py --run-dir runs/easy    # the default question: easy
    flowgraph run examples/routing.py --run-dir runs/hard \
        --input question="Why does sync crash after an upgrade?"
    flowgraph status runs/hard      # quick: not_taken; expert: passed on opus
    flowgraph show examples/routing.py

Without ANTHROPIC_API_KEY every role is a SCRIPTED model (canned replies, no API calls, no key
needed): the scripted classifier calls a question hard when it asks why something breaks,
crashes or is slow.
"""

import json
import os
from typing import Any, Literal

from pydantic import BaseModel

from flowgraph import Context, Graph, ModelRequest, Role
from flowgraph.testing import ScriptedModel


class Triage(BaseModel):
    route: Literal["easy", "hard"]
    reason: str


triager = Role(
    "triager",
    "You sort support questions. easy: one known fact or a pointer to the docs. hard: "
    "debugging, design, or several steps of reasoning.",
    model="haiku",
    output=Triage,
)
quick = Role("quick", "You answer support questions in two sentences.", model="haiku")
expert = Role("expert", "You are a senior engineer: find the cause, then answer.", model="opus")

HARD_WORDS = ("why", "crash", "slow", "breaks", "debug")


def scripted_triage(request: ModelRequest) -> str:
    """The SCRIPTED classifier's answer: a stand-in for haiku's judgement."""
    asked = json.dumps(request.messages[0]["content"]).lower()
    hard = any(word in asked for word in HARD_WORDS)
    reason = "asks why something fails" if hard else "a single known fact"
    return json.dumps({"route": "hard" if hard else "easy", "reason": reason})


SCRIPTED_REPLIES: dict[str, Any] = {
    "triage.classify": scripted_triage,
    "quick": ["Use 'Forgot password' on the sign-in page; the link is valid for an hour."],
    "expert": [
        "The upgrade changed the sync cursor format; clear the local cursor cache "
        "(`app sync --reset-cursor`) and the next sync rebuilds it."
    ],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("routing", inputs={"question": "How do I reset my password?"}, client=client)
graph.route("triage", triager, {"easy": "quick", "hard": "expert"}, task="Question: {question}")
graph.node("quick", quick, "Answer: {question}")
graph.node("expert", expert, "Work out the cause, then answer: {question}")


@graph.step(after=["quick", "expert"])
async def reply(ctx: Context) -> dict[str, str]:
    """Whichever branch ran answered; the other one is not taken and has no output."""
    by = "expert" if "expert" in ctx.outputs else "quick"
    return {"answer": ctx.outputs[by], "by": by}


if __name__ == "__main__":
    result = graph.run_sync()
    print(f"{result['triage']['route']}: {result['reply']['answer']}")
