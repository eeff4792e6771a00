"""One Ray node against two: a map of CPU-bound function steps, and a map of role nodes against
the emulator.

    python benchmarks/distributed.py [--items N] [--work SECONDS] [--roles N]

Starts a local Ray cluster (a head with one CPU; then a second node with one CPU) inside a
loopback-only network namespace (re-running itself under ``unshare -n``, so it needs root), and
runs each map through ``RayExecutor`` on one node, then on two, printing throughput and the
ratio. Each CPU step burns ``--work`` seconds of pure Python (one task per CPU at a time); each
role item makes two model calls against the emulator (``--latency`` per response), every call
going through the coordinator's call path. A warm-up map runs before each timing so worker
processes are started. On a shared machine the figures are noisy: run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flowgraph import Context, Graph, Ledger, Role, tool
from flowgraph.distributed import RayExecutor
from flowgraph.models.anthropic import AnthropicModel
from flowgraph.testing.cluster import LocalRayCluster
from flowgraph.testing.emulator import Emulator, Reply

MODEL = "claude-sonnet-4-6"
PORT = 6393


def spin(seconds: float) -> None:
    """Pure-Python arithmetic for ``seconds`` of this process's CPU time."""
    ends = time.process_time() + seconds
    total = 0
    while time.process_time() < ends:
        for i in range(10_000):
            total += i * i % 7


def ceiling(work: float, items: int) -> float:
    """What this machine gives two processes against one, without Ray: the most any
    two-node ratio can show here (a shared machine's other load takes its share)."""
    rates = []
    for processes in (1, 2):
        began = time.perf_counter()
        with multiprocessing.Pool(processes) as pool:
            pool.map(spin, [work] * items)
        rates.append(items / (time.perf_counter() - began))
    return rates[1] / rates[0]


async def numbers(ctx: Context) -> list[int]:
    return list(range(int(ctx.input["n"])))


async def burn(ctx: Context) -> int:
    """About ``work`` seconds of pure-Python arithmetic (no sleeping: it holds a CPU)."""
    spin(float(ctx.input["work"]))
    return int(ctx.item)


@tool
def look(what: str) -> str:
    """Look something up."""
    return f"found {what}"


def cpu_graph() -> Graph:
    graph = Graph("cpu", inputs=["n", "work"])
    graph.node("numbers", numbers)
    graph.map("burn", burn, over="numbers", after=["numbers"])
    return graph


def role_graph(base_url: str) -> Graph:
    reader = Role("reader", "Read and summarise.", model=MODEL, tools=[look], max_tokens=64)
    client = AnthropicModel(api_key="bench", base_url=base_url)
    graph = Graph("roles", inputs=["n"], client=client)
    graph.node("numbers", numbers)
    graph.map("read", reader, "Summarise item {item}", over="numbers", after=["numbers"])
    return graph


def two_turns(body: dict[str, Any]) -> Reply:
    if any(m["role"] == "assistant" for m in body["messages"]):
        return Reply.text("summary")
    return Reply.tool_use("look", {"what": "it"})


async def timed(graph: Graph, input: dict[str, Any], executor: RayExecutor) -> tuple[float, int]:
    """Wall seconds of one run, and on how many Ray nodes its items ran."""
    with tempfile.TemporaryDirectory(prefix="fgbench") as where:
        began = time.perf_counter()
        result = await graph.run(input, run_dir=Path(where) / "run", executor=executor)
        seconds = time.perf_counter() - began
        records = Ledger.read(Path(where) / "run").nodes.values()
        nodes = len({r.placed for r in records if r.parent and r.placed})
    if result.status != "passed":
        raise SystemExit(f"the {graph.name} map did not pass: {result.errors}")
    return seconds, nodes


async def measure(args: argparse.Namespace, address: str, base_url: str) -> dict[str, float]:
    """Throughput of both maps on the cluster at ``address`` (one Ray connection a process:
    each measurement runs in a process of its own)."""
    executor = RayExecutor(address)
    await executor.start()
    try:
        await timed(cpu_graph(), {"n": 4, "work": 0.05}, executor)  # warm-up: workers start
        cpu, cpu_nodes = await timed(cpu_graph(), {"n": args.items, "work": args.work}, executor)
        await timed(role_graph(base_url), {"n": 10}, executor)
        roles, role_nodes = await timed(role_graph(base_url), {"n": args.roles}, executor)
    finally:
        executor.close()
    return {"cpu": args.items / cpu, "roles": args.roles / roles, "cpu_nodes": cpu_nodes,
            "role_nodes": role_nodes}  # fmt: skip


async def one_then_two(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The figures on a one-node cluster, then on the same cluster with a second node."""
    figures = {}
    with (
        Emulator({MODEL: two_turns}, latency=args.latency) as emu,
        LocalRayCluster(PORT, env=env) as cluster,
    ):
        await asyncio.to_thread(cluster.add, "head_node", head=True)
        figures["one node"] = await asyncio.to_thread(measured, args, cluster.address, emu)
        await asyncio.to_thread(cluster.add, "second_node")
        figures["two nodes"] = await asyncio.to_thread(measured, args, cluster.address, emu)
    return figures


def measured(args: argparse.Namespace, address: str, emu: Emulator) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", address, emu.base_url, "--items",
               str(args.items), "--work", str(args.work), "--roles", str(args.roles)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"a measurement failed: {done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def inside(args: argparse.Namespace) -> None:
    here = str(Path(__file__).resolve().parent)
    paths = [here, os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "RAY_AUTH_MODE": "disabled"}
    os.environ.update(env)
    figures = asyncio.run(one_then_two(args, env))
    one, two = figures["one node"], figures["two nodes"]
    print(f"{'':12} {'CPU map (items/s)':>18} {'role map (items/s)':>19}")
    for name, row in figures.items():
        print(f"{name:12} {row['cpu']:>18.2f} {row['roles']:>19.2f}   items ran on "
              f"{row['cpu_nodes']:.0f} / {row['role_nodes']:.0f} node(s)")  # fmt: skip
    print(f"{'ratio':12} {two['cpu'] / one['cpu']:>17.2f}x {two['roles'] / one['roles']:>18.2f}x")
    machine = ceiling(args.work, max(4, args.items // 4))
    print(f"{'machine':12} {machine:>17.2f}x {'':>19} (two plain processes against one, no Ray)")
    print(f"({args.items} CPU items of {args.work}s each, one CPU per node; {args.roles} role "
          f"items of two model calls, {args.latency}s emulator latency)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24, help="CPU-bound items")
    parser.add_argument("--work", type=float, default=0.5, help="CPU seconds per item")
    parser.add_argument("--roles", type=int, default=100, help="role items")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator seconds per reply")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(args, *args.measure))))
        return
    if args.inside:
        inside(args)
        return
    if shutil.which("unshare") is None or os.geteuid() != 0:
        raise SystemExit("this benchmark needs root and unshare (a loopback-only namespace)")
    command = " ".join([sys.executable, *map(str, sys.argv), "--inside"])
    sys.exit(subprocess.call(["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "sh", "-c",
                              f"ip link set lo up && exec {command}"]))  # fmt: skip


if __name__ == "__main__":
    main()
