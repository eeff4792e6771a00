"""Graphs the distributed tests run on a real Ray cluster, against the emulator at $EMU_URL.

Importable by name (the cluster's workers have this folder on their PYTHONPATH), and loadable
by path by the ``flowgraph`` command."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flowgraph import Context, Graph, ModelLimits, Role, tool
from flowgraph.models.anthropic import AnthropicModel

MODEL = "claude-sonnet-4-6"


@tool
def note(text: str) -> str:
    """Keep a note."""
    return f"noted {text}"


writer = Role("writer", "You write one summary per item.", model=MODEL, tools=[note], max_tokens=64)


async def listing(ctx: Context) -> list[str]:
    return [f"item {i}" for i in range(int(ctx.input["n"]))]


def fanout(n: int = 200, limit: int | None = 4, budget: float | None = None) -> Graph:
    """A step listing ``n`` items, then a map of role nodes over them (a few turns each)."""
    limits = {MODEL: ModelLimits(max_concurrent=limit)} if limit else {}
    client = AnthropicModel(api_key="test", base_url=os.environ["EMU_URL"])
    graph = Graph("fanout", inputs={"n": n}, client=client, limits=limits, max_cost_usd=budget)
    graph.node("listing", listing)
    graph.map("notes", writer, "Summarise {item}", over="listing", after=["listing"])
    return graph


async def square(ctx: Context) -> int:
    return len(str(ctx.item)) ** 2


def placed() -> Graph:
    """A map of steps and a map of role nodes over the same items (for resource requests)."""
    client = AnthropicModel(api_key="test", base_url=os.environ["EMU_URL"])
    graph = Graph("placed", inputs={"n": 8}, client=client)
    graph.node("listing", listing)
    graph.map("squares", square, over="listing", after=["listing"])
    graph.map("notes", writer, "Summarise {item}", over="listing", after=["listing"])
    return graph


async def work(ctx: Context) -> int:
    """One batch input's work: a little waiting, then a line in the input's log saying it ran
    (a path in the input: a Ray worker does not see the coordinator's environment)."""
    await asyncio.sleep(0.3)
    value = int(ctx.input["n"])
    with open(ctx.input["log"], "a", encoding="utf-8") as log:
        log.write(f"{value}\n")
    return value * 2


def batch() -> Graph:
    graph = Graph("batch", inputs=["n", "log"])
    graph.node("work", work)
    return graph


def reply_for(turns: int) -> Any:
    """An emulator script: each conversation calls ``note`` on its first ``turns - 1`` turns,
    then answers with a summary naming its item."""
    from flowgraph.testing.emulator import Reply

    def reply(body: dict[str, Any]) -> Reply:
        first = body["messages"][0]["content"]
        text = first if isinstance(first, str) else first[0]["text"]
        item = text.split("Summarise ", 1)[1].split("\n", 1)[0]
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if turn < turns - 1:
            return Reply.tool_use("note", {"text": f"{item} step {turn}"})
        return Reply.text(f"summary of {item}")

    return reply


@tool
async def slow_note(text: str, marker: str, hold: str = "") -> str:
    """Keep a note, slowly (touching ``marker`` first, so a test sees the tool has started):
    three seconds, or with ``hold`` until that file exists (at most two minutes)."""
    with open(marker, "w", encoding="utf-8"):
        pass
    if not hold:
        await asyncio.sleep(3)
    else:
        for _ in range(2400):
            if os.path.exists(hold):
                break
            await asyncio.sleep(0.05)
    return f"noted {text}"


slow_writer = Role("slow_writer", "You write one summary per item.", model=MODEL,
                   tools=[slow_note], max_tokens=64, max_turns=8)  # fmt: skip


def steered(n: int) -> Graph:
    """A map of ``n`` role nodes with slow tools, to be steered while they run."""
    client = AnthropicModel(api_key="test", base_url=os.environ["EMU_URL"])
    graph = Graph("steered", inputs={"n": n}, client=client)
    graph.node("listing", listing)
    graph.map("notes", slow_writer, "Summarise {item}", over="listing", after=["listing"])
    return graph


def slow_reply_for(turns: int, markers: str, hold_at: int = 0) -> Any:
    """As ``reply_for``, calling ``slow_note`` with a marker file in ``markers`` named after the
    item and the turn (``item 0 turn 2``); at turn ``hold_at`` the tool waits for the file
    ``release`` in ``markers``, so a test acts while it runs, however slow the machine."""
    from flowgraph.testing.emulator import Reply

    def reply(body: dict[str, Any]) -> Reply:
        item = item_of(body)
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        if turn < turns:
            marker = os.path.join(markers, f"{item} turn {turn}")
            note = {"text": f"{item} step {turn}", "marker": marker}
            if turn == hold_at:
                note["hold"] = os.path.join(markers, "release")
            return Reply.tool_use("slow_note", note)
        return Reply.text(f"summary of {item}")

    return reply


def item_of(body: dict[str, Any]) -> str:
    """The item a request's conversation is about (from its first message)."""
    first = body["messages"][0]["content"]
    text = first if isinstance(first, str) else first[0]["text"]
    return str(text.split("Summarise ", 1)[1].split("\n", 1)[0])
