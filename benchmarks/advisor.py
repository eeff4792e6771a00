"""Executor alone vs executor with an advisor vs the strong model alone, on one emulated workload.

    python benchmarks/advisor.py [--quick] [--tasks N] [--latency SECONDS]

One multi-turn, coding-style workload (read the code, run the tests, hit a failing test, decide
on a fix, write it, run the tests again, report) runs as N tasks, N parallel role nodes, under
three configurations:

  haiku alone            the cheap executor by itself
  haiku + opus advisor   the same executor; at the hard decision it consults opus natively
  opus alone             the strong model by itself

Each configuration is a real flowgraph run: ``AnthropicModel`` and the real SDK against the
emulator, with the default price table. Cost per task, turns, consults and the advisor's share
come from the run's ledger (``Ledger.read`` + ``cost_summary``), never from a formula; wall time
is measured around ``graph.run``; per-call wall time and time to first token come from the
ledger's per-call ``latency`` records. The replies are scripted and the same in every
configuration, so the turns match by construction and QUALITY CANNOT BE MEASURED OFFLINE: this
shows what each configuration costs for the same work, not whether the advisor makes the work
better. For completion rates on a task suite with checks, use ``flowgraph eval``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from flowgraph import Graph, Role
from flowgraph.advisor import Advisor
from flowgraph.anthropic_model import AnthropicModel
from flowgraph.cli.reports import cost_summary
from flowgraph.evals import percentile
from flowgraph.ledger import Ledger
from flowgraph.testing.emulator import Emulator, Reply

CONFIGS = [("haiku alone", "haiku", None), ("haiku + opus advisor", "haiku", "opus"),
           ("opus alone", "opus", None)]  # fmt: skip
IDS = {"opus": "claude-opus-5-5", "haiku": "claude-haiku-5-5"}
SOURCE = "def window(xs, n):\n    return [xs[i:i + n] for i in range(len(xs) - n)]\n" * 6
FAILURE = "FAILED test_window_full: expected 3 windows, got 2 (off by one at the end)\n" * 4
ADVICE = (
    "The range stops one short: use range(len(xs) - n + 1), and guard n <= 0 and n > len(xs) "
    "explicitly rather than relying on the empty range. Add the boundary test first. "
) * 4
CONSULT = Reply.consult().content[1]  # the emulator's consult mark


async def read_file(path: str) -> str:
    """Read a file of the project."""
    return SOURCE


async def run_tests(attempt: int) -> str:
    """Run the test suite; `attempt` counts the runs so far."""
    return FAILURE if attempt == 1 else "12 passed"


async def write_file(path: str, content: str) -> str:
    """Replace a file of the project."""
    return f"wrote {len(content)} characters to {path}"


STEPS = [  # (what the executor says, the tool it calls); None: the final answer
    ("I'll read the module first.", ("read_file", {"path": "window.py"})),
    ("Now the tests, to see what fails.", ("run_tests", {"attempt": 1})),
    ("The last window is missing. Two fixes are possible; checking before I commit to one.",
     ("write_file", {"path": "window.py", "content": SOURCE.replace("- n)", "- n + 1)")})),
    ("Running the tests again.", ("run_tests", {"attempt": 2})),
    ("Fixed: range(len(xs) - n + 1) restores the last window; the suite passes.", None),
]  # fmt: skip
HARD_TURN = 2  # 0-based: the turn where the executor must choose a fix


def executor(body: dict[str, Any]) -> Reply:
    """The same script for every configuration: the consult mark is dropped without the tool."""
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    say, call = STEPS[min(turn, len(STEPS) - 1)]
    if call is None:
        return Reply.text(say)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": say}]
    if turn == HARD_TURN:
        blocks.append(CONSULT)
    blocks.append({"type": "tool_use", "name": call[0], "input": call[1]})
    return Reply(tuple(blocks), "tool_use")


def build(model: str, advisor: str | None, tasks: int) -> Graph:
    role = Role(
        "coder",
        "You fix failing tests in a small Python project. Read, test, fix, re-test, report.",
        model=model,
        tools=[read_file, run_tests, write_file],
        advisor=Advisor(model=advisor, max_uses=2, mode="native") if advisor else None,
    )
    graph = Graph(f"advisor_bench_{model}", model=model)
    for i in range(tasks):
        graph.node(f"task{i:03d}", role, f"Task {i}: make tests/test_window.py pass.")
    return graph


async def measure(model: str, advisor: str | None, tasks: int, latency: float) -> dict[str, Any]:
    script: dict[str, Any] = {IDS[model]: executor}
    if advisor:
        script[IDS[advisor]] = lambda _body: ADVICE
    with Emulator(script, latency=latency) as emu, tempfile.TemporaryDirectory() as tmp:
        client = AnthropicModel("offline-benchmark-key", base_url=emu.base_url)
        graph = build(model, advisor, tasks)
        started = time.perf_counter()
        try:
            result = await graph.run(client=client, run_dir=Path(tmp) / "run")
        finally:
            wall = time.perf_counter() - started
            await client.aclose()
        if result.status != "passed":
            raise SystemExit(f"{graph.name}: run {result.status}: {result.errors}")
        doc = Ledger.read(Path(tmp) / "run")
    costs = cost_summary(doc)
    calls = [c for n in doc.nodes.values() for c in n.latency]
    walls = [c["wall_s"] for c in calls]
    ttfts = [c["ttft_s"] for c in calls if c["ttft_s"] is not None]
    advisor_usd = costs["by_kind"].get("advisor", {}).get("cost_usd", 0.0)
    return {
        "usd": costs["run"]["cost_usd"] / tasks,
        "advisor_usd": advisor_usd / tasks,
        "turns": sum(n.turns for n in doc.nodes.values()) / tasks,
        "consults": sum(
            1 for n in doc.nodes.values() for c in n.consults if c["outcome"] == "ok"
        ) / tasks,
        "wall": wall,
        "call_p50": percentile(walls, 50),
        "call_p95": percentile(walls, 95),
        "ttft_p50": percentile(ttfts, 50),
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks (parallel nodes) per config")
    parser.add_argument("--latency", type=float, default=0.0, help="emulated seconds per reply")
    parser.add_argument("--quick", action="store_true", help="5 tasks per configuration")
    args = parser.parse_args()
    tasks = 5 if args.quick else args.tasks
    print(f"{tasks} tasks per configuration, {len(STEPS)} scripted executor turns per task, "
          f"emulator latency {args.latency}s; figures from each run's ledger")  # fmt: skip
    await measure("haiku", None, 1, 0.0)  # warm-up: the SDK import and first connections
    head = ("configuration", "$/task", "advisor $/task", "turns/task", "consults/task", "wall s",
            "call p50 / p95 s", "ttft p50 s")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name, model, advisor in CONFIGS:
        m = await measure(model, advisor, tasks, args.latency)
        print(f"{name} | ${m['usd']:.5f} | ${m['advisor_usd']:.5f} | {m['turns']:.1f} | "
              f"{m['consults']:.1f} | {m['wall']:.2f} | {m['call_p50']:.3f} / "
              f"{m['call_p95']:.3f} | {m['ttft_p50']:.3f}")  # fmt: skip
    print(
        "\nQuality cannot be measured offline: every reply is scripted and identical across the\n"
        "configurations, so equal turns are by construction. Whether the advisor saves turns or\n"
        "catches mistakes needs real models on a real task set; wall time here is flowgraph +\n"
        "SDK + emulator overhead (plus --latency), not model speed."
    )


if __name__ == "__main__":
    asyncio.run(main())
