"""Subgraphs: a reusable ``review`` graph (a security and a style reviewer in parallel, then a
lead who merges their findings) used as one node of a parent graph, after a developer's work.

    flowgraph run examples/subgraph_team.py --run-dir runs/subgraph_team
    flowgraph show examples/subgraph_team.py   # the review nodes drawn as a Mermaid subgraph

The parent takes the subgraph's nodes in as ``<node name>.<its node>`` (``review.security``,
``review.style``, ``review.lead``): each is an ordinary ledger record, resumed like any other.
The subgraph's first nodes run after what the parent wired it to and see that work (as
"outputs of the steps before yours"); the ``review`` node itself gathers the outputs of the
subgraph's last nodes (``{"lead": ...}``), so later parent nodes can use ``{review.lead}``.

Without ANTHROPIC_API_KEY the roles are a SCRIPTED model (canned replies, no API calls, no key
needed).
"""

import os

from flowgraph import Graph, Role
from flowgraph.testing import ScriptedModel

security = Role("security", "You review code for security problems only.", model="sonnet")
style = Role("style", "You review code for readability only.", model="haiku")
lead = Role("lead", "You merge reviews into a short, prioritized list.", model="opus")
developer = Role("developer", "You write small Python functions with docstrings.", model="sonnet")


def review_graph() -> Graph:
    """The reusable part: it reviews whatever the parent graph runs before it. (A function,
    so this file holds one module-level Graph and `flowgraph run` needs no :GRAPH.)"""
    review = Graph("review")
    checks = [
        review.node("security", security, "Review the work above for security problems."),
        review.node("style", style, "Review the work above for readability."),
    ]
    merge = "Merge these reviews:\nSecurity: {security}\nStyle: {style}"
    review.node("lead", lead, merge, after=checks)
    return review


SCRIPTED_REPLIES = {
    "build": ["def read_config(path):\n    return eval(open(path).read())"],
    "review.security": ["eval() on file contents runs arbitrary code; use json.load."],
    "review.style": ["Add a docstring and close the file (use `with`)."],
    "review.lead": ["1. Replace eval with json.load (security).\n2. Use `with` and a docstring."],
    "fix": ["import json\n\n\ndef read_config(path):\n    with open(path) as fh:\n"
            "        return json.load(fh)"],
}  # fmt: skip
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("subgraph_team", inputs={"feature": "read_config(path)"}, client=client)
build = graph.node("build", developer, "Write {feature}.")
checked = graph.node("review", review_graph(), after=[build])
graph.node("fix", developer, "Apply this review:\n{review.lead}\nto:\n{build}", after=[checked])

if __name__ == "__main__":
    print(graph.run_sync().outputs["fix"])
