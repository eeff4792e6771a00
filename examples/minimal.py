"""The smallest useful graph: a writer drafts, a critic (on a stronger model) reviews.

    flowgraph run examples/minimal.py --input topic="resumable workflows"

Without ANTHROPIC_API_KEY both roles are played by a SCRIPTED model (canned replies, no API
calls, no key needed); with a key they run on real models.
"""

import os

from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel

writer = Role("writer", "You write one clear, concrete paragraph.", model="haiku")
critic = Role("critic", "You name the weakest sentence of a text and suggest a fix.", model="opus")

SCRIPTED_REPLIES = {
    "draft": ["A ledger records every finished step, so a crash costs only the running step."],
    "critique": ["Weakest: 'the running step' is vague. Say 'the step that was running'."],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("minimal", inputs={"topic": "resumable workflows"}, client=client)
draft = graph.node("draft", writer, "Write a paragraph about {topic}.")
graph.node("critique", critic, "Critique this paragraph:\n{draft}", after=[draft])

if __name__ == "__main__":
    print(graph.run_sync().outputs["critique"])
