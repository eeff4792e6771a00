"""Requests per second flowgraph sustains against the emulator, beside the raw SDK in the same run.

    python benchmarks/throughput.py [--quick | --reps N]

Workload: 200 independent role nodes, each a K-turn tool loop (the emulator answers K-1 calls
of a ``noop`` tool, then final text), so 200 x K requests with 200 conversations in flight.

- flowgraph: ``await g.run(client=AnthropicModel(api_key=..., base_url=emu.base_url))`` on a
  fresh ``Graph`` of 200 ``Role(..., cache=False)`` nodes, without a run_dir and with a durable
  run_dir (ledger + events.jsonl under /tmp).
- raw SDK: plain asyncio, one ``anthropic.AsyncAnthropic`` built with the same options
  ``AnthropicModel`` passes (``max_retries=0``, ``timeout=600``), 200 tasks in a TaskGroup, each
  doing the same K sequential ``client.beta.messages.stream(...)`` calls with the same body
  (system, tools, max_tokens, messages) and ``get_final_message()``.

Both sides stream (SSE), as ``AnthropicModel`` does by default. Each figure is requests / wall
seconds of the whole run (client creation included, for both sides), the best of N repetitions;
the sides alternate inside each repetition so drift hits both alike. The emulator runs in a
separate process (its ``by_turn`` script form answers each conversation's k-th request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import platform
import shutil
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


@contextlib.contextmanager
def emulator_process(latency: float) -> Iterator[str]:
    """The emulator in its own process (`python -m flowgraph.testing.emulator`), so its server
    threads do not compete with the measured client for this process's GIL."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(SCRIPT, fh)
    command = [sys.executable, "-m", "flowgraph.testing.emulator", "--port", "0",
               "--script", fh.name, "--latency", str(latency), "--api-key", KEY]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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


async def run_flowgraph(base_url: str, run_dir: Path | None) -> None:
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


SIDES = ("raw", "memory", "durable")


async def measure(latency: float, reps: int, root: Path) -> dict[str, tuple[float, float]]:
    """Best (max) req/s and best (min) loop CPU µs/req of each side; the order of the sides
    rotates from one repetition to the next."""
    best = dict.fromkeys(SIDES, (0.0, float("inf")))
    with emulator_process(latency) as url:
        for rep in range(reps):
            run_dir = root / f"run-{latency}-{rep}"
            runs = {
                "raw": partial(run_raw, url),
                "memory": partial(run_flowgraph, url, None),
                "durable": partial(run_flowgraph, url, run_dir),
            }
            for side in SIDES[rep % 3 :] + SIDES[: rep % 3]:
                rate, cpu = await timed(runs[side])
                best[side] = (max(best[side][0], rate), min(best[side][1], cpu))
            shutil.rmtree(run_dir, ignore_errors=True)
    return best


def print_table(rows: list[list[str]]) -> None:
    head = ["latency", "flowgraph", "raw SDK req/s", "flowgraph req/s", "ratio", "target", ""]
    head += ["client CPU µs/req raw / flowgraph (info)"]
    cols = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, cols, strict=True)).rstrip())


async def main(reps: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="flowgraph-throughput-", dir="/tmp"))
    rows: list[list[str]] = []
    try:
        # Untimed warm-up: lazy imports (SDK, runner, networkx) and first connections.
        with emulator_process(0.0) as url:
            await run_raw(url)
            await run_flowgraph(url, None)
            await run_flowgraph(url, root / "warmup")
        for latency in LATENCIES:
            f = await measure(latency, reps, root)
            label, (raw, raw_cpu) = f"{latency * 1000:.0f} ms", f["raw"]
            for name, side in (("no run_dir", "memory"), ("durable run_dir", "durable")):
                value, cpu = f[side]
                ratio, target = value / raw, TARGETS[side]
                ok = "PASS" if ratio >= target else "MISS"
                cells = [f"{raw:.0f}", f"{value:.0f}", f"{ratio:.2f}", f">= {target:.2f}", ok]
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
    print(f"anthropic {anthropic.__version__}; best of {reps} repetition(s).")
    print(f"{NODES} parallel nodes x {TURNS} model turns = {NODES * TURNS} requests per run, all")
    print("streaming (SSE): AnthropicModel's default vs raw client.beta.messages.stream().")
    print(f"both sides: one SDK client each, max_retries=0, SDK connection pool ({pool_size()}).")
    print("the emulator runs in its own process (python -m flowgraph.testing.emulator), so it")
    print("shares the 2 cores but not the GIL with the measured client; compare the ratio, not")
    print("absolute req/s across runs or machines.")
    print("client CPU: time.process_time() of this process per request (the emulator is another")
    print("process), min over repetitions: steadier than req/s when other processes load the box.")
    print("durable run_dir: ledger, events.jsonl, per-node transcripts/<node>.jsonl under /tmp.\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition instead of three")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (noisy machine: raise)")
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    header(reps)
    asyncio.run(main(reps))
