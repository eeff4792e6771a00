"""Cost per task of a published advisor workload, measured from flowgraph's own accounting.

    python benchmarks/cost_table.py [--quick] [--tasks N]

The published shape: 25 turns per task, 2,000 input and 500 output tokens per turn, 3 of those
turns with an advisor consultation of 600 output tokens at the advisor's rates; prices per MTok
opus $15 / $75, sonnet $3 / $15, haiku $0.80 / $4. Three configurations: opus alone, sonnet with
an opus advisor, haiku with an opus advisor.

Every figure in the "measured" columns is read from the ledgers of real flowgraph runs
(``AnthropicModel`` and the real SDK against the emulator, native advisor consults, ``Pricing``
with exactly the published prices). The emulator counts tokens from the real request and
response sizes (ceil(chars / 4)), so the workload is sized in characters: ~8,000 characters of
prompt per turn, 2,000-character replies, 2,400-character advice. The published formula is
printed beside them as a reference column only. See docs/costs.md for the design.

Two layouts:
  turns         one single-turn node per turn (25 per task): every turn is a fresh ~2,000-token
                request, the published shape. With caching on, the task's ~2,000-token
                instructions are the stable prefix: written by the first turn, read by the rest.
  conversation  one node per task holding all 25 turns in one conversation: the history grows
                turn by turn (so inputs exceed 2,000 per turn), and caching reads it back.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowgraph import Graph, Role
from flowgraph.advisor import Advisor
from flowgraph.anthropic_model import AnthropicModel
from flowgraph.cli.reports import cost_summary
from flowgraph.ledger import Ledger
from flowgraph.pricing import Pricing
from flowgraph.testing.emulator import Emulator, Reply

TURNS, CONSULT_TURNS = 25, (6, 13, 20)  # 3 of the 25 turns consult the advisor
IN_TOKENS, OUT_TOKENS, ADVICE_TOKENS = 2_000, 500, 600
PUBLISHED = {  # USD per million tokens (input, output)
    "claude-opus-5-5": (15.0, 75.0),
    "claude-sonnet-5-5": (3.0, 15.0),
    "claude-haiku-5-5": (0.80, 4.0),
}
PRICING = Pricing({m: {"input": i, "output": o} for m, (i, o) in PUBLISHED.items()})
ALIAS = {"opus": "claude-opus-5-5", "sonnet": "claude-sonnet-5-5", "haiku": "claude-haiku-5-5"}
CONFIGS = [("opus alone", "opus", None), ("sonnet + opus advisor", "sonnet", "opus"),
           ("haiku + opus advisor", "haiku", "opus")]  # fmt: skip
REPLY = ("I made the next change and checked it against the failing case. " * 40)[: OUT_TOKENS * 4]
ADVICE = ("Keep the interface, fix the invariant first, then add the regression test. " * 40)[
    : ADVICE_TOKENS * 4
]
NOTE = """
Quality cannot be measured offline: every reply is scripted. In the conversation layout
flowgraph keeps a cache breakpoint where the previous turn's request ended, so each turn reads
the history the last one wrote and writes only the newest exchange. See docs/costs.md."""
CONSULT = Reply.consult().content[1]  # the emulator's consult mark


def turn_message(task: int, turn: int) -> str:
    tag = " [consult]" if turn in CONSULT_TURNS else ""
    return f"Task {task:03d}, turn {turn:02d}: do the next step.{tag}"


def instructions(task: int) -> str:
    """~2,000 tokens with the turn's message: the task's stable prefix (distinct per task)."""
    head = f"Task {task:03d}. You are a careful engineer working through a coding task. "
    body = "Follow the project's conventions, keep changes small and explain each one. " * 120
    return (head + body)[: (IN_TOKENS - len(turn_message(task, 1)) // 4) * 4]


def _turn_reply(body: dict[str, Any]) -> Reply:
    """The turns layout: a consult turn consults, then answers; every turn answers REPLY."""
    last = body["messages"][-1]["content"]
    text = last if isinstance(last, str) else last[-1].get("text", "")
    return Reply.consult(after=REPLY) if "[consult]" in text else Reply.text(REPLY)


def _conversation_reply(body: dict[str, Any]) -> Reply:
    """The conversation layout: 24 turns of REPLY plus a `step` call, then a final REPLY."""
    turn = 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn >= TURNS:
        return Reply.text(REPLY)
    blocks: list[dict[str, Any]] = [CONSULT] if turn in CONSULT_TURNS else []
    blocks += [{"type": "text", "text": REPLY}, {"type": "tool_use", "name": "step", "input": {}}]
    return Reply(tuple(blocks), "tool_use")


async def step() -> str:
    """Do the next step of the task."""
    return "done"


def build(layout: str, executor: str, advisor: str | None, tasks: int, cache: bool) -> Graph:
    graph = Graph(f"cost_{layout}", model=executor, pricing=PRICING)
    adv = Advisor(model=advisor, max_uses=3, max_tokens=700, mode="native", guidance="")
    for task in range(tasks):
        role = Role("executor", instructions(task), model=executor, cache=cache,
                    advisor=adv if advisor else None, max_turns=TURNS + 1,
                    tools=[step] if layout == "conversation" else [])  # fmt: skip
        if layout == "conversation":
            graph.node(f"task{task:03d}", role, turn_message(task, 1))
        for turn in range(1, TURNS + 1 if layout == "turns" else 1):
            graph.node(f"task{task:03d}_turn{turn:02d}", role, turn_message(task, turn))
    return graph


@dataclass
class Measured:
    usd_per_task: float
    turns: float  # executor turns per task
    consults: float  # per task
    exec_in: float  # per turn: uncached + cache write + cache read
    exec_out: float
    adv_in: float  # per consult
    adv_out: float
    cache_write: float  # per task
    cache_read: float


async def measure(
    layout: str, executor: str, advisor: str | None, tasks: int, cache: bool
) -> Measured:
    script: dict[str, Callable[[dict[str, Any]], Reply | str]] = {
        ALIAS[executor]: _turn_reply if layout == "turns" else _conversation_reply
    }
    if advisor:
        script[ALIAS[advisor]] = lambda _body: ADVICE
    with Emulator(script) as emu, tempfile.TemporaryDirectory() as tmp:
        client = AnthropicModel("offline-benchmark-key", base_url=emu.base_url)
        graph = build(layout, executor, advisor, tasks, cache)
        try:
            result = await graph.run(client=client, run_dir=Path(tmp) / "run")
        finally:
            await client.aclose()
        if result.status != "passed":
            raise SystemExit(f"{layout}/{executor}: run {result.status}: {result.errors}")
        doc = Ledger.read(Path(tmp) / "run")
    costs = cost_summary(doc)
    kinds = costs["by_kind"]
    ex, adv = kinds["executor"], kinds.get("advisor")
    turns = sum(n.turns for n in doc.nodes.values())
    consults = sum(1 for n in doc.nodes.values() for c in n.consults if c["outcome"] == "ok")
    ex_in = ex["input_tokens"] + ex["cache_creation_input_tokens"] + ex["cache_read_input_tokens"]
    run = costs["run"]
    return Measured(
        usd_per_task=float(run["cost_usd"]) / tasks,
        turns=turns / tasks,
        consults=consults / tasks,
        exec_in=ex_in / turns,
        exec_out=ex["output_tokens"] / turns,
        adv_in=adv["input_tokens"] / consults if adv and consults else 0.0,
        adv_out=adv["output_tokens"] / consults if adv and consults else 0.0,
        cache_write=run["cache_creation_input_tokens"] / tasks,
        cache_read=run["cache_read_input_tokens"] / tasks,
    )


def published_code(executor: str, advisor: str | None) -> float:
    """What the published code computes: ``executor_turns = turns - advisor_turns``, so 22
    executor turns and 3 advisor turns (each reading 2,000 tokens and writing 600)."""
    ei, eo = PUBLISHED[ALIAS[executor]]
    if advisor is None:
        return TURNS * (IN_TOKENS * ei + OUT_TOKENS * eo) / 1e6
    ai, ao = PUBLISHED[ALIAS[advisor]]
    n = len(CONSULT_TURNS)
    return (
        (TURNS - n) * (IN_TOKENS * ei + OUT_TOKENS * eo) + n * (IN_TOKENS * ai + ADVICE_TOKENS * ao)
    ) / 1e6


def published(executor: str, advisor: str | None) -> float:
    """flowgraph's reading (a labelled column of its own): all 25 turns are executor work, 3 of
    them also consult the advisor."""
    ei, eo = PUBLISHED[ALIAS[executor]]
    if advisor is None:
        return TURNS * (IN_TOKENS * ei + OUT_TOKENS * eo) / 1e6
    ai, ao = PUBLISHED[ALIAS[advisor]]
    n = len(CONSULT_TURNS)
    return (
        TURNS * (IN_TOKENS * ei + OUT_TOKENS * eo) + n * (IN_TOKENS * ai + ADVICE_TOKENS * ao)
    ) / 1e6


def savings(
    executor: str, advisor: str | None, formula: Callable[[str, str | None], float]
) -> float:
    """The share saved against opus alone under ``formula``."""
    return 1 - formula(executor, advisor) / formula("opus", None)


def table(title: str, rows: list[tuple[str, str, str | None, Measured]]) -> None:
    print(f"\n{title}")
    head = ("configuration", "measured $/task", "published code $/task",
            "flowgraph reading $/task",
            "turns", "consults", "exec in/out per turn", "advisor in/out per consult",
            "cache write/read per task")  # fmt: skip
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name, executor, advisor, m in rows:
        print(" | ".join([
            name, f"${m.usd_per_task:.4f}", f"${published_code(executor, advisor):.4f}",
            f"${published(executor, advisor):.4f}",
            f"{m.turns:.0f}", f"{m.consults:.0f}", f"{m.exec_in:,.0f} / {m.exec_out:,.0f}",
            f"{m.adv_in:,.0f} / {m.adv_out:,.0f}" if m.consults else "-",
            f"{m.cache_write:,.0f} / {m.cache_read:,.0f}",
        ]))  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=4, help="tasks per configuration")
    parser.add_argument("--quick", action="store_true", help="one task per configuration")
    args = parser.parse_args()
    tasks = 1 if args.quick else args.tasks
    print(f"published shape per task: {TURNS} turns x {IN_TOKENS:,} in / {OUT_TOKENS} out; "
          f"{len(CONSULT_TURNS)} consults x {ADVICE_TOKENS} out at the advisor's rates; "
          f"{tasks} task(s) per configuration, measured from the ledgers")  # fmt: skip
    results: dict[tuple[str, bool], list[tuple[str, str, str | None, Measured]]] = {}
    for layout in ("turns", "conversation"):
        for cache in (False, True):
            results[layout, cache] = [
                (name, ex, adv, await measure(layout, ex, adv, tasks, cache))
                for name, ex, adv in CONFIGS
            ]
            what = "published shape: a fresh request per turn" if layout == "turns" else (
                "one conversation per task (inputs grow)")  # fmt: skip
            table(f"{layout} layout, {what}, caching {'on' if cache else 'off'}",
                  results[layout, cache])  # fmt: skip
    print("\nside by side, measured $/task (caching off -> on)")
    print("configuration | turns layout | conversation layout")
    print("--- | --- | ---")
    for i, (name, *_rest) in enumerate(CONFIGS):
        cells = []
        for layout in ("turns", "conversation"):
            off = results[layout, False][i][3].usd_per_task
            on = results[layout, True][i][3].usd_per_task
            change = on / off - 1
            cells.append(f"${off:.4f} -> ${on:.4f} ({change:+.0%})")
        print(f"{name} | {' | '.join(cells)}")
    print(NOTE)


if __name__ == "__main__":
    asyncio.run(main())
