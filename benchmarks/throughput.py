"""Requests per second flowgraph sustains against the emulator, beside the raw SDK in the same run.

    python benchmarks/throughput.py [--quick | --reps N]

Workload: 200 independent role nodes, each a K-turn tool loop (the emulator answers K-1 calls
of a ``noop`` tool, then final text), so 200 x K requests with 200 conversations in flight.

- flowgraph: ``await g.run(client=AnthropicModel(api_key=..., base_url=emu.base_url))`` on a
  fresh ``Graph`` of 200 ``Role(..., cache=False)`` nodes, without a run_dir and with a durable
  run_dir (ledger + events.jsonl under ``--runs-in``). A run sets the heap it starts on aside
  from the garbage collector (``flowgraph/execute/heap.py``); the raw side has no such thing,
  so a third, informative flowgraph row runs durable with ``FLOWGRAPH_GC_FREEZE=0``: what the
  ledger and the orchestration cost with the collector as the raw side has it.
- raw SDK: plain asyncio, one ``anthropic.AsyncAnthropic`` built with the same options
  ``AnthropicModel`` passes (``max_retries=0``, ``timeout=600``), 200 tasks in a TaskGroup, each
  doing the same K sequential ``client.beta.messages.stream(...)`` calls with the same body
  (system, tools, max_tokens, messages) and ``get_final_message()``.

Both sides stream (SSE), as ``AnthropicModel`` does by default. Each figure is requests / wall
seconds of the whole run (client creation included, for both sides). The sides run back to
back in each repetition (their order rotating); the ratio is the median over N repetitions of
each repetition's flowgraph/raw ratio, with the range, because one lucky run of either side
moves a best-of figure by 20% on a shared machine. The emulator runs in a separate process
(its ``by_turn`` script form answers each conversation's k-th request); with two or more
cores it is pinned to the last one, leaving the others to the measured client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import anthropic

from flowgraph import Graph, Role, Tool
from flowgraph.anthropic_model import AnthropicModel
from flowgraph.execute.heap import ENV as GC_FREEZE

NODES = 200
TURNS = 3  # model turns per node: TURNS - 1 tool calls, then the final text
MODEL = "claude-sonnet-4-6"
SYSTEM = "Answer briefly."
TASK = "Say hi."
MAX_TOKENS = 4096  # Role's default
KEY = "sk-bench"
# flowgraph req/s as a share of the raw SDK's: in memory, and with the durable ledger (issue 9)
TARGETS = {"memory": 0.90, "durable": 0.85}
LATENCIES = (0.0, 0.2)


async def noop() -> str:
    """Do nothing."""
    return "ok"


# Reply k answers the k-th request of each conversation: TURNS - 1 tool calls, then text.
SCRIPT = {
    "models": {
        MODEL: {"by_turn": [{"tool_use": {"name": "noop", "input": {}}}] * (TURNS - 1) + ["done"]}
    }
}


CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def placement() -> str:
    """Where the two processes run, for the header."""
    if len(CORES) < 2:
        return "client and emulator share the machine's cores (fewer than two available)"
    return f"emulator pinned to core {CORES[-1]}, the client free on all {len(CORES)}"


def _emulator_cores(pid: int) -> None:
    """Keep the emulator on the last core: it cannot take the client's main thread's core,
    while the client's threads (the ledger's helper, the SDK's name lookups) may still use
    the spare time of the emulator's, as they would on a machine serving real models."""
    if len(CORES) >= 2:
        os.sched_setaffinity(pid, {CORES[-1]})


@contextlib.contextmanager
def emulator_process(latency: float) -> Iterator[str]:
    """The emulator in its own process (`python -m flowgraph.testing.emulator`), so its server
    threads do not compete with the measured client for this process's GIL."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(SCRIPT, fh)
    command = [sys.executable, "-m", "flowgraph.testing.emulator", "--port", "0",
               "--script", fh.name, "--latency", str(latency), "--api-key", KEY]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    _emulator_cores(proc.pid)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "flowgraph emulator listening on http://127.0.0.1:N"
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        Path(fh.name).unlink()


ROLE = Role("r", SYSTEM, model=MODEL, cache=False, tools=[noop])
_TOOL = Tool(noop)  # what the Role builds from the same function: same name, text, schema
TOOLS: list[Any] = [
    {"name": _TOOL.name, "description": _TOOL.description, "input_schema": _TOOL.input_schema}
]


def sdk_options(base_url: str) -> dict[str, Any]:
    """What ``AnthropicModel(api_key=KEY, base_url=...)`` hands the SDK (pool: SDK defaults)."""
    return {"api_key": KEY, "base_url": base_url, "max_retries": 0, "timeout": 600.0}


async def raw_node(client: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": TASK}]
    for _ in range(TURNS):
        async with client.beta.messages.stream(
            model=MODEL, max_tokens=MAX_TOKENS, system=SYSTEM, tools=TOOLS, messages=messages
        ) as stream:
            message = await stream.get_final_message()
        uses = [b for b in message.content if b.type == "tool_use"]
        if not uses:
            return
        messages.append({"role": "assistant", "content": message.content})
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": await noop()} for b in uses
        ]
        messages.append({"role": "user", "content": results})
    raise AssertionError("the emulator never answered with text")


async def run_raw(base_url: str) -> None:
    client = anthropic.AsyncAnthropic(**sdk_options(base_url))
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(NODES):
                group.create_task(raw_node(client))
    finally:
        await client.close()


async def run_flowgraph(base_url: str, run_dir: Path | None, freeze: bool = True) -> None:
    """One flowgraph run; ``freeze=False`` leaves the garbage collector as the raw side has
    it (``FLOWGRAPH_GC_FREEZE=0``: the run does not set the heap it starts on aside)."""
    if not freeze:
        os.environ[GC_FREEZE] = "0"
    try:
        await _one_run(base_url, run_dir)
    finally:
        os.environ.pop(GC_FREEZE, None)


async def _one_run(base_url: str, run_dir: Path | None) -> None:
    g = Graph("throughput")
    for i in range(NODES):
        g.node(f"n{i}", ROLE, TASK)
    model = AnthropicModel(api_key=KEY, base_url=base_url)
    try:
        result = await g.run(client=model, run_dir=run_dir)
    finally:
        await model.aclose()
    if result.status != "passed" or len(result.executed) != NODES:
        first = next(iter(result.errors.items()), None)
        raise RuntimeError(f"flowgraph run {result.status}: {first}")


async def timed(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Requests per second of one run, and this process's CPU µs per request. Each side
    checks its own requests succeeded (a failed call raises, a flowgraph run must pass), so
    every run makes exactly NODES x TURNS requests."""
    gc.collect()
    t0, cpu0 = time.perf_counter(), time.process_time()
    await run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    done = NODES * TURNS
    return done / seconds, cpu / done * 1e6


SIDES = ("raw", "memory", "durable", "thawed")  # thawed: durable, the heap left to the GC
ROWS = (
    ("no run_dir", "memory"),
    ("durable run_dir", "durable"),
    ("durable, FLOWGRAPH_GC_FREEZE=0", "thawed"),
)


async def measure(latency: float, reps: int, root: Path) -> dict[str, list[tuple[float, float]]]:
    """Each repetition's req/s and client CPU µs/req, per side; the order of the sides
    rotates from one repetition to the next."""
    seen: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
    with emulator_process(latency) as url:
        for rep in range(reps):
            run_dir = root / f"run-{latency}-{rep}"
            runs = {
                "raw": partial(run_raw, url),
                "memory": partial(run_flowgraph, url, None),
                "durable": partial(run_flowgraph, url, run_dir),
                "thawed": partial(run_flowgraph, url, root / f"thawed-{latency}-{rep}", False),
            }
            turn = rep % len(SIDES)
            for side in SIDES[turn:] + SIDES[:turn]:
                seen[side].append(await timed(runs[side]))
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(root / f"thawed-{latency}-{rep}", ignore_errors=True)
    return seen


def median(values: list[tuple[float, float]], i: int) -> float:
    return statistics.median(v[i] for v in values)


def spread(values: list[float], digits: int = 0) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def paired(side: list[tuple[float, float]], raw: list[tuple[float, float]]) -> list[float]:
    """Each repetition's flowgraph/raw req/s ratio: the two ran back to back, so a slow spell
    of the machine slows both and cancels out of the ratio."""
    return [s[0] / r[0] for s, r in zip(side, raw, strict=True)]


def print_table(rows: list[list[str]]) -> None:
    head = ["latency", "flowgraph", "raw SDK req/s (range)", "flowgraph req/s (range)"]
    head += ["ratio (range)", "target", "", "client CPU µs/req raw / flowgraph (info)"]
    cols = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, cols, strict=True)).rstrip())


async def main(reps: int, runs_in: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="flowgraph-throughput-", dir=runs_in))
    rows: list[list[str]] = []
    try:
        # Untimed warm-up: lazy imports (SDK, runner, networkx) and first connections.
        with emulator_process(0.0) as url:
            await run_raw(url)
            await run_flowgraph(url, None)
            await run_flowgraph(url, root / "warmup")
        for latency in LATENCIES:
            f = await measure(latency, reps, root)
            label = f"{latency * 1000:.0f} ms"
            raw, raw_cpu = median(f["raw"], 0), median(f["raw"], 1)
            for name, side in ROWS:
                value, cpu = median(f[side], 0), median(f[side], 1)
                ratios = paired(f[side], f["raw"])
                ratio, target = statistics.median(ratios), TARGETS.get(side)
                cells = [f"{raw:.0f} ({spread([v[0] for v in f['raw']])})"]
                cells += [f"{value:.0f} ({spread([v[0] for v in f[side]])})"]
                cells += [f"{ratio:.2f} ({spread(ratios, 2)})"]
                if target is None:
                    cells += ["(info)", ""]
                else:
                    cells += [f">= {target:.2f}", "PASS" if ratio >= target else "MISS"]
                rows.append(
                    [label, name, *cells, f"{raw_cpu:.0f} / {cpu:.0f} ({cpu / raw_cpu:.2f}x)"]
                )
                label = ""
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows)


def pool_size() -> str:
    try:
        from anthropic._constants import DEFAULT_CONNECTION_LIMITS as limits
    except ImportError:  # a private constant: describe it rather than fail
        return "the SDK's default pool"
    keepalive = limits.max_keepalive_connections
    return f"max_connections={limits.max_connections}, max_keepalive={keepalive}"


def header(reps: int) -> None:
    print(f"flowgraph throughput benchmark — Python {platform.python_version()} ({sys.platform}),")
    print(f"anthropic {anthropic.__version__}; median of {reps} repetition(s).")
    print(f"{NODES} parallel nodes x {TURNS} model turns = {NODES * TURNS} requests per run, all")
    print("streaming (SSE): AnthropicModel's default vs raw client.beta.messages.stream().")
    print(f"both sides: one SDK client each, max_retries=0, SDK connection pool ({pool_size()}).")
    print("the emulator runs in its own process (python -m flowgraph.testing.emulator), so it")
    print("does not share the GIL with the measured client; compare the ratio, not")
    print(f"absolute req/s across runs or machines; {placement()}.")
    print("client CPU: time.process_time() of this process per request (the emulator is another")
    print("process), median over repetitions.")
    print("flowgraph sets the heap a run starts on aside from the garbage collector; the")
    print("FLOWGRAPH_GC_FREEZE=0 row leaves it as the raw side has it.")
    print("durable run_dir: ledger.json and events.jsonl (every turn journaled);", end=" ")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition instead of nine")
    parser.add_argument("--reps", type=int, default=9, help="repetitions (noisy machine: raise)")
    parser.add_argument(
        "--runs-in",
        type=Path,
        default=Path.cwd(),
        help="where the durable run directories go (default: the current directory, where "
        "`flowgraph run` puts runs/; creating files in /tmp costs ~10x more on some machines)",
    )
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    header(reps)
    print(f"durable run directories under {args.runs_in.resolve()}.\n")
    asyncio.run(main(reps, args.runs_in))
