"""Torture: random SIGKILLs of a mixed graph, resumed until done, and what the kills cost.

    python benchmarks/torture.py [--kills 100] [--per-run 7] [--seed 1] [--latency 0.05] [--serial]

Each run drives one mixed graph as a real child process (``flowgraph run FILE --run-dir DIR``,
then ``flowgraph resume DIR`` after each kill) against the Messages-API emulator, which runs in
a thread of this process and is reached over HTTP by the real ``anthropic`` SDK in the child:

    prep (step) -> worker (role, 6 tool calls) ──────────────┐
                -> fan (map over prep's 3 items, a role each, │
                        2 tool calls each, 2 at a time) ──────┼-> final (step)
                -> draft (role) -> edit (review loop: round 1 │
                        sends it back, the reviser makes one   │
                        tool call, round 2 approves) ─────────┘

The child is SIGKILLed at random moments: anywhere in its life, and two fresh starts in five right
when its run directory appears (a kill during creation). After ``--per-run`` kills the last
process is left to finish. What is checked, and printed:

- unreadable ledgers: ``Ledger.read`` is called in a loop from a thread of this process while
  the child runs (every instant it can catch), and once after every kill;
- runs that cannot be resumed: a process after a kill that exits non-zero (a directory a kill
  left during creation is started again with ``flowgraph run --run-dir``, as docs/ledger.md
  says; one with a ledger with ``flowgraph resume``);
- passed nodes re-run: a step or tool (they append to a side-effect log) or a model request
  (the emulator's log) for a record the ledger said was passed when the process was killed;
- re-paid calls: messages the emulator answered (and billed) whose id is not in the ledger: the
  child was killed before it recorded them, so they were asked again. Each record asks one
  call at a time, so a call is in flight at a kill only if it is its record's last before the
  kill: any other unrecorded call is a defect, and so is more re-paid calls for one kill than
  records asking at once (4 here; 1 with ``--serial``, which runs one node at a time). Also
  counted: conversation positions asked twice (never more than the re-paid calls) and tool
  calls run twice (a tool in flight at a kill);
- cost: per record, the ledger's token counts and cost against the emulator's bill for exactly
  the calls whose ids the ledger holds (a ledger call the emulator never billed is an error too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from flowgraph import Ledger
from flowgraph.errors import LedgerError
from flowgraph.models.seam import Usage
from flowgraph.money.pricing import DEFAULT_PRICING
from flowgraph.testing import Emulator, Reply

MODEL = "claude-haiku-5-5"
REVIEW_MODEL = "claude-sonnet-5-5"
WORKER_TICKS = 6
ITEM_TICKS = 2
ITEMS = ("alpha", "beta", "gamma")

GRAPH = """
import asyncio, os
from pathlib import Path
from pydantic import BaseModel
from flowgraph import Context, Graph, Role, Tool
from flowgraph.anthropic_model import AnthropicModel

LOG = Path(os.environ["FG_TORTURE_LOG"])


def note(what: str) -> None:
    with LOG.open("a") as fh:
        fh.write(what + "\\n")


async def tick(i: int, ctx: Context) -> str:
    "Do one tick of work (a side effect: a line in the log)."
    note(f"tool {ctx.node} {i}")
    await asyncio.sleep(0.02)
    return f"tick {i} done"


async def prep(ctx: Context) -> list[str]:
    note("step prep")
    await asyncio.sleep(0.05)
    return ITEMS


async def final(ctx: Context) -> dict:
    note("step final")
    return {"worker": ctx.outputs["worker"], "fan": ctx.outputs["fan"],
            "edit": ctx.outputs["edit"]["approved"]}


class Verdict(BaseModel):
    approved: bool
    notes: str


client = AnthropicModel("test-key", base_url=os.environ["FG_EMU"])
graph = Graph("torture", client=client)
graph.node("prep", prep)
worker = Role("worker", "You tick.", model="haiku", tools=[Tool(tick)], max_turns=20)
graph.node("worker", worker, "[rec:worker] Tick six times.", after=["prep"])
graph.map("fan", Role("item", "You tick.", model="haiku", tools=[Tool(tick)]),
          "[rec:fan[{index}]] Handle {item}.", over="prep", concurrency=CONCURRENCY,
          after=FAN_AFTER)
writer = Role("writer", "You write.", model="haiku", tools=[Tool(tick)])
graph.node("draft", writer, "[rec:draft] Write a draft.", after=DRAFT_AFTER)
editor = Role("editor", "You review.", model="sonnet", output=Verdict)
graph.review_loop("edit", editor, "[rec:edit.review{round}] Review:\\n{work}", work="draft")
graph.node("final", final, after=["worker", "fan", "edit"])
"""


def graph_source(serial: bool) -> str:
    """The graph file: parallel (worker, the map's items two at a time and draft together),
    or ``serial`` (one node at a time, so at most one model call is ever in flight)."""
    order = {"CONCURRENCY": "1", "FAN_AFTER": '["worker"]', "DRAFT_AFTER": '["fan"]'}
    if not serial:
        order = {"CONCURRENCY": "2", "FAN_AFTER": "[]", "DRAFT_AFTER": '["prep"]'}
    source = GRAPH.replace("ITEMS", repr(list(ITEMS)))
    for key, value in order.items():
        source = source.replace(key, value)
    return source


_REC = re.compile(r"\[rec:([^\]]*\]?)\]")
_ROUND = re.compile(r"A reviewer asked for changes \(round (\d+)\)")


def _first_text(body: dict[str, Any]) -> str:
    content = body["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def record_of(body: dict[str, Any]) -> str:
    """Which ledger record a request belongs to (the graph's tasks carry ``[rec:NAME]``)."""
    text = _first_text(body)
    revise = _ROUND.search(text)
    if revise:
        return f"edit.revise{revise.group(1)}"
    found = _REC.search(text)
    return found.group(1) if found else "?"


def _results(body: dict[str, Any]) -> int:
    return sum(
        1
        for m in body["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    )


def reply(body: dict[str, Any]) -> Reply:
    """The emulator's answer, a function of the conversation alone (so a replayed conversation
    gets the same answers a fresh one would)."""
    record, done = record_of(body), _results(body)
    ticks = {"worker": WORKER_TICKS, "edit.revise2": 1}.get(record, 0)
    if record.startswith("fan["):
        ticks = ITEM_TICKS
    if done < ticks:
        return Reply.tool_use("tick", {"i": done + 1})
    if record == "edit.review1":
        return Reply.text(json.dumps({"approved": False, "notes": "Say more."}))
    if record.startswith("edit.review"):
        return Reply.text(json.dumps({"approved": True, "notes": "Good."}))
    return Reply.text(f"{record} done")


# -- one run, killed and resumed ------------------------------------------------------------


@dataclass
class Kill:
    """What was true at one kill: the ledger's passed records and how far each log went."""

    passed: set[str]
    log_at: int
    asked_at: int
    creation: bool  # the run directory held no ledger yet


@dataclass
class Figures:
    """Totals over all runs."""

    runs: int = 0
    kills: int = 0
    creation_kills: int = 0
    processes: int = 0
    reads: int = 0
    unreadable: list[str] = field(default_factory=list)
    unresumable: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    passed_rerun: list[str] = field(default_factory=list)
    billed_calls: int = 0
    repaid: int = 0
    repaid_per_kill_max: int = 0
    width: int = 4  # the most records that ask a model at once: at most one call in flight each
    repaid_not_in_flight: list[str] = field(default_factory=list)
    reasked: int = 0
    tool_reruns: int = 0
    unbilled_in_ledger: int = 0
    cost_mismatches: list[str] = field(default_factory=list)
    ledger_usd: float = 0.0
    billed_usd: float = 0.0
    lost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every acceptance figure holds."""
        return not (
            self.unreadable
            or self.unresumable
            or self.unfinished
            or self.passed_rerun
            or self.cost_mismatches
            or self.unbilled_in_ledger
            or self.repaid_not_in_flight
            or self.repaid_per_kill_max > self.width
            or self.reasked > self.repaid
        )


class _Reader(threading.Thread):
    """Reads the ledger in a loop while a child drives it: any failure is an unreadable
    ledger at that instant (a directory with no ``ledger.json`` yet is not a ledger yet)."""

    def __init__(self, run_dir: Path, figures: Figures) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.figures = run_dir, figures
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            if (self.run_dir / "ledger.json").exists():
                try:
                    Ledger.read(self.run_dir)
                    self.figures.reads += 1
                except Exception as exc:  # a refusal, or worse: a reader that breaks
                    if (self.run_dir / "ledger.json").exists():  # not a creation-time race
                        self.figures.unreadable.append(f"while running: {exc!r}")
            time.sleep(0.003)


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = "import sys; from flowgraph.cli import main; sys.argv[0] = 'flowgraph'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _start(work: Path, run_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``resume`` when a ledger is there, else ``run --run-dir`` (a fresh start, or a directory
    a kill left during creation, which docs/ledger.md says ``run --run-dir`` re-creates)."""
    if Ledger.exists(run_dir):
        return _cli("resume", str(run_dir), cwd=work, env=env)
    return _cli("run", "graph.py", "--run-dir", str(run_dir), cwd=work, env=env)


def _kill_when(child: subprocess.Popen[bytes], run_dir: Path, emu: Emulator, rng: random.Random,
               span: float, fresh: bool) -> bool:  # fmt: skip
    """SIGKILL ``child`` at a random moment; False if it finished first. A fresh
    start is killed two times in five right as its run directory appears (creation); otherwise
    the kill falls within ``span`` seconds of the child's first model request (the start of
    the interpreter and the SDK's import are not what is tested)."""
    asked = len(emu.requests)
    deadline = time.monotonic() + 60
    if fresh and rng.random() < 0.4:
        while not run_dir.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0002)
        time.sleep(rng.uniform(0, 0.015))
    else:
        while child.poll() is None and len(emu.requests) == asked and time.monotonic() < deadline:
            time.sleep(0.001)
        end = time.monotonic() + rng.uniform(0, span)
        while child.poll() is None and time.monotonic() < end:
            time.sleep(0.001)
    if child.poll() is not None:
        return False
    child.send_signal(signal.SIGKILL)
    child.wait()
    return True


def _log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def one_run(index: int, kills: int, root: Path, figures: Figures, rng: random.Random,
            latency: float, span: float, serial: bool = False) -> None:  # fmt: skip
    """Drive one run through ``kills`` kills to the end and check it."""
    work = root / f"run{index}"
    work.mkdir()
    (work / "graph.py").write_text(graph_source(serial))
    run_dir, log = work / "ledger", work / "effects.log"
    history: list[Kill] = []
    with Emulator(latency=latency) as emu:
        emu.script(MODEL, reply)
        emu.script(REVIEW_MODEL, reply)
        env = {**os.environ, "FG_EMU": emu.base_url, "FG_TORTURE_LOG": str(log)}
        env = {k: v for k, v in env.items() if not k.startswith(("ANTHROPIC_", "COVERAGE"))}
        while True:
            fresh = not Ledger.exists(run_dir)
            child = _start(work, run_dir, env)
            figures.processes += 1
            reader = _Reader(run_dir, figures)
            reader.start()
            killed = len(history) < kills and _kill_when(child, run_dir, emu, rng, span, fresh)
            if not killed:
                try:
                    child.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            reader.stopped.set()
            reader.join()
            stderr = child.stderr.read().decode() if child.stderr else ""
            if child.stderr:
                child.stderr.close()
            if not killed:
                if child.returncode != 0:
                    figures.unresumable.append(f"run {index}: exit {child.returncode}: {stderr}")
                break
            history.append(_after_kill(run_dir, log, emu, figures, index))
        _check_run(index, run_dir, log, emu, history, figures)
    figures.runs += 1
    figures.kills += len(history)
    figures.creation_kills += sum(k.creation for k in history)


def _after_kill(run_dir: Path, log: Path, emu: Emulator, figures: Figures, index: int) -> Kill:
    time.sleep(0.1)  # a request the child sent whole just before it died is logged by now
    passed: set[str] = set()
    creation = not (run_dir / "ledger.json").exists()
    if not creation:
        try:
            doc = Ledger.read(run_dir)
            passed = {n for n, r in doc.nodes.items() if r.status == "passed"}
        except Exception as exc:
            figures.unreadable.append(f"run {index} after a kill: {exc!r}")
    return Kill(passed, len(_log_lines(log)), len(_answered(emu)), creation)


def _answered(emu: Emulator) -> list[Any]:
    """The messages the emulator answered (and billed), in order."""
    return [r for r in emu.requests if r.response_id is not None]


def _check_run(index: int, run_dir: Path, log: Path, emu: Emulator, history: list[Kill],
               figures: Figures) -> None:  # fmt: skip
    try:
        doc = Ledger.read(run_dir)
    except LedgerError as exc:
        figures.unreadable.append(f"run {index} at the end: {exc}")
        return
    bad = [n for n, r in doc.nodes.items() if r.status != "passed"]
    final = doc.nodes.get("final")
    if doc.status != "passed" or bad or final is None:
        figures.unfinished.append(f"run {index}: {doc.status}, not passed: {bad}")
        return
    lines = _log_lines(log)
    asked = _answered(emu)
    _check_reruns(index, lines, asked, history, figures)
    ticks = Counter(line for line in lines if line.startswith("tool "))
    figures.tool_reruns += sum(n - 1 for n in ticks.values())
    positions = Counter((record_of(r.body), len(r.body["messages"])) for r in asked)
    figures.reasked += sum(n - 1 for n in positions.values())
    _check_money(index, doc, asked, figures)
    _check_in_flight(index, doc, asked, history, figures)


def _check_reruns(index: int, lines: list[str], asked: list[Any], history: list[Kill],
                  figures: Figures) -> None:  # fmt: skip
    for kill in history:
        for line in lines[kill.log_at :]:
            parts = line.split()
            if parts[1] in kill.passed:
                figures.passed_rerun.append(f"run {index}: {line} after it passed")
        for request in asked[kill.asked_at :]:
            if record_of(request.body) in kill.passed:
                figures.passed_rerun.append(
                    f"run {index}: model asked for {record_of(request.body)} after it passed"
                )


def _usd(request: Any) -> float:
    """What the emulator billed for one answered request, at the default prices."""
    return (
        DEFAULT_PRICING.price(Usage.from_dict(dict(request.usage or {})), request.model).usd or 0.0
    )


def _check_money(index: int, doc: Any, asked: list[Any], figures: Figures) -> None:
    pricing = DEFAULT_PRICING
    billed = {r.response_id: r for r in asked}
    recorded: set[str] = set()
    for name, record in doc.nodes.items():
        ids = [c.get("id") for c in record.latency]
        recorded.update(i for i in ids if i)
        missing = [i for i in ids if i not in billed]
        figures.unbilled_in_ledger += len(missing)
        usage, usd = Usage(), 0.0
        for i in ids:
            if i in billed:
                call = Usage.from_dict(dict(billed[i].usage or {}))
                usage = usage + call
                usd += pricing.price(call, billed[i].model).usd or 0.0
        ledger_usage = record.usage if isinstance(record.usage, dict) else {}
        mine = usage.to_dict()
        keys = ("input_tokens", "output_tokens")
        if any(int(ledger_usage.get(k, 0)) != int(mine.get(k, 0)) for k in keys):
            figures.cost_mismatches.append(f"run {index} {name}: ledger {ledger_usage} != {mine}")
        cost = record.cost_usd or 0.0
        if abs(cost - usd) > 1e-9 * max(1.0, usd):
            figures.cost_mismatches.append(f"run {index} {name}: ledger ${cost} != billed ${usd}")
        figures.ledger_usd += cost
    lost = [r for r in asked if r.response_id not in recorded]
    figures.billed_calls += len(asked)
    figures.repaid += len(lost)
    figures.billed_usd += sum(_usd(r) for r in asked)
    figures.lost_usd += sum(_usd(r) for r in lost)


def _check_in_flight(index: int, doc: Any, asked: list[Any], history: list[Kill],
                     figures: Figures) -> None:  # fmt: skip
    """Each record asks its model one call at a time, so a call a process had finished with
    is one followed by another of the same record before the kill. Only the last call of each
    record before a kill may be missing from the ledger (it was in flight); and none at all
    where no kill came (the process that finished the run)."""
    recorded = {c.get("id") for r in doc.nodes.values() for c in r.latency}
    bounds = [k.asked_at for k in history]
    start = 0
    for window, end in enumerate([*bounds, len(asked)]):
        last: dict[str, int] = {}
        for i in range(start, end):
            last[record_of(asked[i].body)] = i
        lost = [i for i in range(start, end) if asked[i].response_id not in recorded]
        for i in lost:
            if window == len(bounds) or last[record_of(asked[i].body)] != i:
                figures.repaid_not_in_flight.append(
                    f"run {index}: {asked[i].response_id} ({record_of(asked[i].body)}) was "
                    "answered and never recorded, though the process went on past it"
                )
        if window < len(bounds):
            figures.repaid_per_kill_max = max(figures.repaid_per_kill_max, len(lost))
        start = end


def torture(kills: int, per_run: int = 7, seed: int = 1, latency: float = 0.05,
            span: float = 1.0, serial: bool = False) -> Figures:  # fmt: skip
    """Kill runs of the mixed graph ``kills`` times in all (``per_run`` a run) and check them."""
    # Parallel: worker, two of the map's items and draft (or the review loop) ask at once.
    figures = Figures(width=1 if serial else 4)
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fg-torture-") as tmp:
        index = 0
        while figures.kills < kills:
            one_run(index, min(per_run, kills - figures.kills), Path(tmp), figures, rng, latency,
                    span, serial)  # fmt: skip
            index += 1
    figures.seconds = time.monotonic() - started
    return figures


def report(f: Figures) -> Iterator[str]:
    """The figures as lines for a person."""
    yield f"runs {f.runs}, SIGKILLs {f.kills} ({f.creation_kills} with no ledger yet), " \
          f"processes {f.processes}, {f.seconds:.0f} s"  # fmt: skip
    yield f"ledger reads while running: {f.reads}; unreadable ledgers: {len(f.unreadable)}"
    yield f"runs that could not be resumed: {len(f.unresumable)}; unfinished: {len(f.unfinished)}"
    yield f"passed nodes re-run: {len(f.passed_rerun)}"
    yield f"model calls billed: {f.billed_calls}; re-paid (billed, not in the ledger): " \
          f"{f.repaid} (<= kills {f.kills}: {f.repaid <= f.kills}; most for one kill: " \
          f"{f.repaid_per_kill_max}, records asking at once: {f.width}; " \
          f"re-paid that were not in flight: {len(f.repaid_not_in_flight)})"  # fmt: skip
    yield f"positions asked twice: {f.reasked}; tool calls run twice: {f.tool_reruns}"
    yield f"cost: ledger ${f.ledger_usd:.6f}, billed ${f.billed_usd:.6f}, of which for calls " \
          f"killed in flight ${f.lost_usd:.6f}; mismatched records: {len(f.cost_mismatches)}; " \
          f"ledger calls the emulator never billed: {f.unbilled_in_ledger}"  # fmt: skip
    for problem in (f.unreadable + f.unresumable + f.unfinished + f.passed_rerun
                    + f.cost_mismatches + f.repaid_not_in_flight)[:20]:  # fmt: skip
        yield f"  ! {problem}"
    yield "PASS" if f.ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--per-run", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.05, help="emulator seconds per reply")
    parser.add_argument("--span", type=float, default=1.0, help="latest kill, s after a request")
    parser.add_argument("--serial", action="store_true", help="one node at a time")
    args = parser.parse_args()
    figures = torture(args.kills, args.per_run, args.seed, args.latency, args.span, args.serial)
    for line in report(figures):
        print(line, flush=True)
    sys.exit(0 if figures.ok else 1)


if __name__ == "__main__":
    main()
