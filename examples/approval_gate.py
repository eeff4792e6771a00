"""Approval gate: a planner writes a migration plan, a person approves it, then a deploy step
runs it; meanwhile an independent branch (the changelog) does not wait for anyone.

    flowgraph run examples/approval_gate.py --run-dir runs/gate
    # the run ends `waiting_approval` (exit 0): plan and changelog passed, deploy pending
    flowgraph approve runs/gate gate --note "ok, run it after 18:00"   # or: flowgraph reject
    flowgraph resume runs/gate
    # plan and changelog are reused; the gate passes with the note and deploy runs

A rejection makes the gate fail on resume and what depends on it is skipped. The decision is
recorded on the gate's ledger record (``decision``), and its output is
``{"approved": true, "note": ...}``, which downstream tasks and steps can read.

Without ANTHROPIC_API_KEY the roles are a SCRIPTED model (canned replies, no API calls, no key
needed); the deploy step only writes a file into the run's workspace.
"""

import os

from flowgraph import Context, Graph, Role
from flowgraph.testing import ScriptedModel

planner = Role("planner", "You plan database migrations as short numbered steps.", model="opus")
scribe = Role("scribe", "You write one-line changelog entries.", model="haiku")


async def deploy(ctx: Context) -> str:
    """Stand-in for the real deploy: record the plan and the approver's note."""
    ctx.workspace.mkdir(parents=True, exist_ok=True)
    log = ctx.workspace / "deployed.txt"
    log.write_text(f"{ctx.outputs['plan']}\napproved: {ctx.outputs['gate']['note']}\n")
    return f"deployed; see {log.name}"


SCRIPTED_REPLIES = {
    "plan": ["1. Add column users.locale (nullable).\n2. Backfill 'en'.\n3. Make it NOT NULL."],
    "changelog": ["Users get a locale setting (default: en)."],
}
client = None if os.environ.get("ANTHROPIC_API_KEY") else ScriptedModel(SCRIPTED_REPLIES)

graph = Graph("approval_gate", inputs={"change": "add a locale to users"}, client=client)
plan = graph.node("plan", planner, "Plan the migration to {change}.")
gate = graph.gate("gate", "a person reviews the migration plan", after=[plan])
graph.node("deploy", deploy, after=[gate])
graph.node("changelog", scribe, "Write the changelog entry for: {change}")

if __name__ == "__main__":
    print(graph.run_sync(run_dir="runs/gate").status)  # waiting_approval: approve, then resume
