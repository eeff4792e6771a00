"""Durable to the turn: a role node killed in the middle of a ten-tool-call conversation (a real
child process, the real SDK, the emulator over HTTP) resumes in a new process from its journal —
the recorded model turns are not asked again and the recorded tool calls are not run again; only
what was in flight at the kill may repeat."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowgraph import Graph, Ledger, Role, Tool
from flowgraph.cli.output import transcript_of
from flowgraph.ledger.reader import steps_of
from flowgraph.testing import Emulator, Reply, ScriptedModel
from flowgraph.testing.scripted import text, tool_call

MODEL = "claude-haiku-5-5"
CALLS = 10

GRAPH = """
import os, time
from pathlib import Path
from flowgraph import Graph, Role, Tool
from flowgraph.anthropic_model import AnthropicModel

LOG = Path(os.environ["FG_TOOL_LOG"])

async def tick(i: int) -> str:
    "Record a tick (a side effect)."
    with LOG.open("a") as fh:
        fh.write(f"{i}\\n")
    time.sleep(0.15)
    return f"tick {i} done"

graph = Graph("ticks", client=AnthropicModel("test-key", base_url=os.environ["FG_EMU"]))
graph.node("worker", Role("worker", "You tick.", model="haiku", tools=[Tool(tick)],
                          max_turns=20), "Tick ten times.")
"""


@pytest.fixture(autouse=True)
def _finalize_stopped_runs() -> Iterator[None]:
    """A KeyboardInterrupt raised inside a tool escapes the event loop and leaves tasks that
    never finish; they are finalized whenever the garbage collector next runs. Collect them
    as each test here ends, not in the middle of a later test (CPython 3.11 then fails an AST
    construction that happens to be running with "recursion depth mismatch")."""
    yield
    gc.collect()


def _reply(body: dict[str, Any]) -> Reply:
    """Turn n asks for tick n until ten ticks are answered, then finishes."""
    done = sum(
        1
        for m in body["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    )
    if done < CALLS:
        return Reply.tool_use("tick", {"i": done + 1})
    return Reply.text("ticked ten times")


@pytest.mark.slow
def test_a_node_killed_mid_conversation_resumes_at_its_turn(tmp_path: Path) -> None:
    (tmp_path / "ticks.py").write_text(GRAPH)
    log = tmp_path / "tools.log"
    run_dir = tmp_path / "run"
    with Emulator() as emu:
        emu.script(MODEL, _reply)
        env = {**os.environ, "FG_TOOL_LOG": str(log), "FG_EMU": emu.base_url}
        env.pop("ANTHROPIC_API_KEY", None)
        cli = [sys.executable, "-c", "import sys; from flowgraph.cli import main; main()"]
        child = subprocess.Popen(
            [*cli, "run", "ticks.py", "--run-dir", str(run_dir)], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and len(log.read_text().split()) >= 5:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the child finished before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
        asked_before = emu.calls(MODEL)
        ticks_before = log.read_text().split()
        # The turns before the kill are on disk before any resume: the transcript shows them.
        on_disk = subprocess.run([*cli, "output", str(run_dir), "worker", "--transcript", "--json"],
                                 env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert on_disk.returncode == 0, on_disk.stderr
        said = json.loads(on_disk.stdout)["messages"]
        assert said[0] == {"role": "user", "content": "Tick ten times."}
        assert sum(1 for m in said if m["role"] == "assistant") >= 4
        shown = subprocess.run([*cli, "output", str(run_dir), "worker", "--transcript"],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert shown.returncode == 0 and "[user] Tick ten times." in shown.stdout
        assert shown.stdout.count("tool call tick(") >= 4, shown.stdout
        assert Ledger.read(run_dir).nodes["worker"].status == "running"

        resumed = subprocess.run(
            [*cli, "resume", str(run_dir)], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        asked = emu.calls(MODEL)
        billed = emu.billed[MODEL].output_tokens

    ticks = log.read_text().split()
    assert sorted(set(ticks), key=int) == [str(i) for i in range(1, CALLS + 1)]
    assert len(ticks) <= CALLS + 1, (
        f"tool calls run again: {ticks} (before the kill {ticks_before})"
    )
    assert asked <= CALLS + 1 + 1, f"{asked} model requests for {CALLS + 1} turns"
    assert asked_before < asked
    doc = Ledger.read(run_dir)
    worker = doc.nodes["worker"]
    assert doc.status == "passed" and worker.output == "ticked ten times"
    assert worker.turns == CALLS + 1 and worker.conversation_at is None
    # One attempt across both processes: its transcript holds every turn once, in order.
    messages = transcript_of(run_dir, "worker")["messages"]
    answers = [m for m in messages if m["role"] == "assistant"]
    assert len(answers) == CALLS + 1 and answers[-1]["content"][0]["text"] == "ticked ten times"
    recorded = sum(int(row.get("output_tokens", 0)) for row in worker.spend.values())
    assert billed - recorded <= 20  # at most the one reply in flight at the kill went unrecorded


def test_an_interrupted_node_carries_on_in_process_without_asking_again(tmp_path: Path) -> None:
    """The same rule through the public API: a run stopped after three tool calls of a node is
    resumed; the three recorded turns are replayed, not asked, and the tools not re-run."""
    ran: list[int] = []

    async def tick(i: int) -> str:
        """Record a tick."""
        ran.append(i)
        if len(ran) == 3 and not stopped:
            stopped.append(True)
            raise KeyboardInterrupt  # a person presses Ctrl-C after the third call
        return f"tick {i}"

    stopped: list[bool] = []
    replies = [tool_call("tick", i=i) for i in range(1, 6)] + [text("done")]
    model = ScriptedModel({"worker": replies})
    g = Graph("ticks", client=model)
    g.node("worker", Role("worker", "You tick.", tools=[Tool(tick)]), "Tick five times.")
    with pytest.raises(KeyboardInterrupt):
        g.run_sync(run_dir=tmp_path / "run")
    assert len(model.requests) == 3
    assert [d["k"] for d in steps_of(tmp_path / "run", "worker")] == [
        "task",
        "a",
        "r",
        "a",
        "r",
        "a",
    ]
    # The snapshot holds no step of it, only where its first one is in the journal.
    saved = json.loads((tmp_path / "run" / "ledger.json").read_text())["nodes"]["worker"]
    assert "conversation" not in saved
    journal = (tmp_path / "run" / "events.jsonl").read_bytes()
    head = json.loads(journal[saved["conversation_at"] :].split(b"\n")[0])
    assert head["n"] == "worker" and head["t"]["k"] == "task"
    result = g.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result.outputs["worker"] == "done"
    assert ran == [1, 2, 3, 3, 4, 5]  # only the call in flight at the stop ran again
    assert len(model.requests) == 6  # turns 4, 5 and 6: none of the first three again
    done = Ledger.read(tmp_path / "run").nodes["worker"]
    assert done.turns == 6 and done.conversation_at is None


def test_a_run_stopped_under_schema_1_carries_on_and_survives_a_second_stop(
    tmp_path: Path,
) -> None:
    """A ledger written before schema 2 kept a stopped attempt's steps in ledger.json. The
    next process carries on from them, and journals them again so that its own snapshots can
    point at them: a second stop loses no turn either."""
    ran: list[int] = []
    stops = {3, 5}  # Ctrl-C in the third call, and again in the fourth (the fifth run)

    async def tick(i: int) -> str:
        """Record a tick."""
        ran.append(i)
        if len(ran) in stops:
            stops.discard(len(ran))
            raise KeyboardInterrupt
        return f"tick {i}"

    model = ScriptedModel({"worker": [tool_call("tick", i=i) for i in range(1, 6)] + ["done"]})
    g = Graph("ticks", client=model)
    g.node("worker", Role("worker", "You tick.", tools=[Tool(tick)]), "Tick five times.")
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        g.run_sync(run_dir=run)
    steps = steps_of(run, "worker")
    data = json.loads((run / "ledger.json").read_text())  # as schema 1 wrote it
    data["schema_version"] = 1
    record = data["nodes"]["worker"]
    del record["conversation_at"]
    record["conversation"] = steps[1:]  # schema 1 ledgers from before the task step, too
    (run / "ledger.json").write_text(json.dumps(data))
    with pytest.raises(KeyboardInterrupt):
        g.run_sync(run_dir=run)  # carries on at turn 3's call, stops after the fourth
    assert ran == [1, 2, 3, 3, 4]
    assert len(model.requests) == 4
    result = g.run_sync(run_dir=run)
    assert result.ok and result.outputs["worker"] == "done"
    assert ran == [1, 2, 3, 3, 4, 4, 5]  # each stop repeats only the call it interrupted
    assert len(model.requests) == 6  # every turn asked once


def test_a_changed_node_starts_its_conversation_over(tmp_path: Path) -> None:
    calls: list[str] = []

    async def tick(i: int) -> str:
        """Record a tick."""
        calls.append(f"tick{i}")
        if len(calls) == 2:
            raise KeyboardInterrupt
        return "ok"

    model = ScriptedModel({"worker": [tool_call("tick", i=1), tool_call("tick", i=2), "done"]})
    g = Graph("ticks", client=model)
    g.node("worker", Role("worker", "You tick.", tools=[Tool(tick)]), "Tick.")
    with pytest.raises(KeyboardInterrupt):
        g.run_sync(run_dir=tmp_path / "run")
    assert Ledger.read(tmp_path / "run").nodes["worker"].conversation_at is not None
    fresh = ScriptedModel({"worker": ["done at once"]})
    changed = Graph("ticks", client=fresh)
    changed.node("worker", Role("worker", "You tick, carefully.", tools=[Tool(tick)]), "Tick.")
    result = changed.run_sync(run_dir=tmp_path / "run")
    assert result.ok and result.outputs["worker"] == "done at once"
    assert len(fresh.requests[0].messages) == 1  # the old turns were not replayed into it


def test_a_final_review_that_said_stop_is_replayed_not_asked_again(tmp_path: Path) -> None:
    """A node whose final answer the advisor reviewed ("STOP": done) and that was stopped
    before it could pass: on resume the recorded review is replayed — the advisor is not asked
    (nor paid) again, and neither is the executor."""
    from flowgraph import Advisor
    from flowgraph.events import AdvisorConsulted

    def stop_after_the_review(event: object) -> None:
        if isinstance(event, AdvisorConsulted):
            raise KeyboardInterrupt  # a person presses Ctrl-C the moment the review is in

    def graph() -> Graph:
        g = Graph("reviewed", model="haiku")
        advisor = Advisor(mode="emulated", before_done=True)
        g.node("w", Role("worker", "Do the work.", advisor=advisor), "task")
        return g

    first = ScriptedModel({"w": ["the answer"], "advisor": ["STOP"]})
    with pytest.raises(KeyboardInterrupt):
        graph().run_sync(client=first, run_dir=tmp_path / "run", on_event=stop_after_the_review)
    assert [r.purpose for r in first.requests][-1] == "advisor"  # the review was asked
    record = Ledger.read(tmp_path / "run").nodes["w"]
    assert record.status != "passed" and [c["advice"] for c in record.consults] == ["STOP"]

    again = ScriptedModel({"w": ["another answer"], "advisor": ["Start over."]})
    result = graph().run_sync(client=again, run_dir=tmp_path / "run")
    assert result.ok and result.outputs["w"] == "the answer"
    assert again.requests == []  # neither the executor nor the advisor was asked again
    record = Ledger.read(tmp_path / "run").nodes["w"]
    assert [c["trigger"] for c in record.consults] == ["before_done"]
    assert record.spend[f"advisor:{record.consults[0]['model']}"]["calls"] == 1
