"""Scheduling and ledger overhead of flowgraph, beside a plain-asyncio floor from the same run.

    python benchmarks/overhead.py [--quick]

The floor is a minimal hand-written event-driven DAG executor: one ``asyncio.TaskGroup``, each
task started the moment its last dependency finishes, no ledger, no events, no context objects.
It is the honest best case for the same shape on the same interpreter and machine.

What is timed: for flowgraph, ``await g.run(...)`` on a freshly built ``Graph`` (building with
``g.node`` is outside the timer). A fresh graph has no cached validation, so the timed region
includes ``g.validate()`` (networkx DAG, cycle check, topological order, fingerprints) exactly once,
as in real use where each run validates once. For the floor, the timed region includes building
its dependents/wait-count tables. Each figure is the best (min) of N repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from flowgraph import Context, Graph
from flowgraph.ledger import Ledger

Shape = dict[str, tuple[str, ...]]  # node name -> its direct dependencies, in topological order
Work = Callable[[], Awaitable[None]]

SLEEP = 0.05  # W2's step duration (s)
T3, T150 = "<= 3x floor", "<= 150 µs"  # the targets
T25 = "<= 2.5x floor"
BLOB = 10_240  # W5: each node's fresh string, in characters


async def _noop_work() -> None:
    return None


async def _sleep_work() -> None:
    await asyncio.sleep(SLEEP)


# One function object per kind, shared by every node: a step's fingerprint hashes its source.
async def noop(ctx: Context) -> None:
    return None


async def sleeper(ctx: Context) -> None:
    await asyncio.sleep(SLEEP)


async def own_blob(ctx: Context) -> str:
    """W5's baseline: a node returns only its own fresh 10 KB string."""
    return ctx.node[-1] * BLOB


async def growing_list(ctx: Context) -> list[str]:
    """W5: a node returns its upstream's list plus a fresh 10 KB string (a growing history)."""
    index = int(ctx.node[1:])  # chain(n) names its nodes n0, n1, ...
    upstream = ctx.outputs[f"n{index - 1}"] if index else []
    return [*upstream, ctx.node[-1] * BLOB]


def chain(n: int) -> Shape:
    return {f"n{i}": ((f"n{i - 1}",) if i else ()) for i in range(n)}


def parallel(n: int) -> Shape:
    return {f"n{i}": () for i in range(n)}


def layered(layers: int, width: int) -> Shape:
    shape: Shape = {}
    for layer in range(layers):
        prev = tuple(f"l{layer - 1}_{j}" for j in range(width)) if layer else ()
        for j in range(width):
            shape[f"l{layer}_{j}"] = prev
    return shape


def fan_out(children: int) -> Shape:
    shape: Shape = {"root": ()}
    shape.update({f"c{i}": ("root",) for i in range(children)})
    return shape


async def floor_run(shape: Shape, work: Work) -> None:
    """The best case: start each task the moment its last dependency finishes."""
    dependents: dict[str, list[str]] = {n: [] for n in shape}
    waiting: dict[str, int] = {}
    for name, deps in shape.items():
        waiting[name] = len(deps)
        for dep in deps:
            dependents[dep].append(name)
    async with asyncio.TaskGroup() as group:

        async def node(name: str) -> None:
            await work()
            for child in dependents[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    group.create_task(node(child))

        for name, count in list(waiting.items()):
            if count == 0:
                group.create_task(node(name))


def build(shape: Shape, step: Callable[[Context], Awaitable[None]], name: str) -> Graph:
    g = Graph(name)
    for node, deps in shape.items():
        g.node(node, step, after=deps)
    return g


async def time_floor(shape: Shape, work: Work, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        await floor_run(shape, work)
        best = min(best, time.perf_counter() - t0)
    return best


async def time_flowgraph(
    shape: Shape, step: Callable[[Context], Awaitable[None]], reps: int, root: Path | None
) -> tuple[float, Path | None]:
    """Best ``g.run`` time (fresh graph each rep, so one validate is included); ``root`` set:
    durable ledger in a new run dir under it. Returns the time and the last run dir."""
    best, run_dir = float("inf"), None
    for _ in range(reps):
        if run_dir is not None:
            shutil.rmtree(run_dir.parent)  # keep only the last (the resume test reuses it)
        run_dir = Path(tempfile.mkdtemp(dir=root)) / "run" if root is not None else None
        g = build(shape, step, "bench")
        gc.collect()
        t0 = time.perf_counter()
        result = await g.run(run_dir=run_dir)
        best = min(best, time.perf_counter() - t0)
        assert result.status == "passed" and len(result.executed) == len(shape), result.status
    return best, run_dir


async def time_pair(
    shape: Shape, work: Work, step: Callable[[Context], Awaitable[None]], reps: int
) -> tuple[float, float]:
    """Best floor and best no-ledger flowgraph times, measured alternately, so a machine that
    slows down or speeds up mid-run moves both sides of the ratio alike."""
    floor = mem = float("inf")
    for _ in range(reps):
        floor = min(floor, await time_floor(shape, work, 1))
        mem = min(mem, (await time_flowgraph(shape, step, 1, None))[0])
    return floor, mem


async def time_resume(shape: Shape, run_dir: Path, reps: int) -> tuple[float, float, float]:
    """Best times of: resume via ``g.run`` (fresh graph), ``Ledger.read``, ``g.validate``."""
    resume = read = validate = float("inf")
    for _ in range(reps):
        g = build(shape, noop, "bench")
        gc.collect()
        t0 = time.perf_counter()
        result = await g.run(run_dir=run_dir)
        resume = min(resume, time.perf_counter() - t0)
        assert result.status == "passed" and result.executed == (), result.executed
        gc.collect()
        t0 = time.perf_counter()
        doc = Ledger.read(run_dir)
        read = min(read, time.perf_counter() - t0)
        assert len(doc.nodes) == len(shape)
        g = build(shape, noop, "bench")
        t0 = time.perf_counter()
        g.validate().fingerprint  # noqa: B018 - the plan needs every fingerprint
        validate = min(validate, time.perf_counter() - t0)
    return resume, read, validate


@dataclass
class Row:
    workload: str
    figure: str
    value: str
    floor: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def us(seconds: float, nodes: int) -> float:
    return seconds / nodes * 1e6


def print_table(rows: list[Row]) -> None:
    head = Row("workload", "figure", "flowgraph", "floor", "ratio", "target", "")
    cols = [
        max(len(getattr(r, f)) for r in [head, *rows])
        for f in ("workload", "figure", "value", "floor", "ratio", "target", "verdict")
    ]
    for r in [head, *rows]:
        cells = [r.workload, r.figure, r.value, r.floor, r.ratio, r.target, r.verdict]
        print("  ".join(c.ljust(w) for c, w in zip(cells, cols, strict=True)).rstrip())


def compared(
    workload: str, figure: str, value: float, floor: float, unit: str, target: str, ok: bool | None
) -> Row:
    ratio = f"{value / floor:.1f}x"
    verdict_ = "" if ok is None else verdict(ok)
    return Row(
        workload, figure, f"{value:.1f}{unit}", f"{floor:.1f}{unit}", ratio, target, verdict_
    )


async def main(quick: bool) -> None:
    reps = 1 if quick else 5
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="flowgraph-bench-", dir="/tmp"))
    try:
        # Untimed warm-up: the first run pays one-off lazy imports (networkx, runner, structlog).
        await build(chain(3), noop, "warmup").run()
        await build(chain(3), noop, "warmup").run(run_dir=root / "warmup")
        # W1: a chain of 1,000 no-op steps.
        shape = chain(1000)
        n = len(shape)
        fl, mem = (us(t, n) for t in await time_pair(shape, _noop_work, noop, reps))
        dur = us((await time_flowgraph(shape, noop, reps, root))[0], n)
        name = "W1 chain 1,000"
        rows.append(compared(name, "no ledger, µs/node", mem, fl, "", T3, mem <= 3 * fl))
        rows.append(compared("", "durable ledger, µs/node", dur, fl, "", T150, dur <= 150))

        # W2: 500 parallel 50 ms steps; the overhead is the makespan minus 50 ms.
        shape = parallel(500)
        fl, mem = ((t - SLEEP) * 1e3 for t in await time_pair(shape, _sleep_work, sleeper, reps))
        dur = ((await time_flowgraph(shape, sleeper, reps, root))[0] - SLEEP) * 1e3
        name = "W2 500 x 50 ms"
        rows.append(compared(name, "no ledger, makespan-50ms", mem, fl, " ms", T3, mem <= 3 * fl))
        rows.append(compared("", "durable, makespan-50ms", dur, fl, " ms", "(info)", None))

        # W3: 20 layers x 50 steps, each node after the whole previous layer.
        shape = layered(20, 50)
        n = len(shape)
        fl, mem = (us(t, n) for t in await time_pair(shape, _noop_work, noop, reps))
        name = "W3 layers 20x50"
        rows.append(compared(name, "no ledger, µs/node", mem, fl, "", T25, mem <= 2.5 * fl))

        # W5: a chain of 100 steps, each returning its upstream's list plus a fresh 10 KB
        # string, beside the same chain where each returns only its own 10 KB string.
        shape = chain(100)
        n = len(shape)
        own = us((await time_flowgraph(shape, own_blob, reps, None))[0], n)
        grow = us((await time_flowgraph(shape, growing_list, reps, None))[0], n)
        name = "W5 chain 100, 10 KB"
        rows.append(Row(name, "own string, µs/node", f"{own:.1f}", target="(info)"))
        cells = ("", "growing list, µs/node", f"{grow:.1f}", "", f"{grow / own:.1f}x own")
        rows.append(Row(*cells, "<= 2x own", verdict(grow <= 2 * own)))

        # W4: fan-out of 1,000 and of 10,000 children, durable ledger (and without, to isolate
        # the ledger's share: per-node ledger cost = durable - no-ledger).
        per: dict[int, tuple[float, float, float]] = {}
        big_dir: Path | None = None
        for children in (1000, 10_000):
            shape = fan_out(children)
            n = len(shape)
            fl, mem = (us(t, n) for t in await time_pair(shape, _noop_work, noop, reps))
            seconds, big_dir = await time_flowgraph(shape, noop, reps, root)
            per[children] = (fl, mem, us(seconds, n))
        for children, (fl, mem, dur) in per.items():
            name = f"W4 fan-out {children:,}"
            rows.append(compared(name, "no ledger, µs/node", mem, fl, "", T3, mem <= 3 * fl))
            rows.append(compared("", "durable ledger, µs/node", dur, fl, "", T150, dur <= 150))
            rows.append(Row("", "ledger cost (durable-none)", f"{dur - mem:.1f}", target="(info)"))
        small, big = per[1000][2] - per[1000][1], per[10_000][2] - per[10_000][1]
        ratio = big / small if small > 0 else float("inf")
        cells = ("W4 10k vs 1k", "ledger cost/node, 10k/1k", f"{ratio:.2f}", "", "")
        rows.append(Row(*cells, "<= 1.10 (10% noise)", verdict(ratio <= 1.10)))
        total = per[10_000][2] / per[1000][2]
        rows.append(Row("", "durable µs/node, 10k/1k", f"{total:.2f}", target="(info)"))

        # Resume: the finished 10,000-child run, executing nothing.
        assert big_dir is not None
        resume, read, validate = await time_resume(fan_out(10_000), big_dir, reps)
        cells = ("Resume 10k ledger", "g.run(run_dir) total", f"{resume:.3f} s", "", "")
        rows.append(Row(*cells, "< 0.5 s", verdict(resume < 0.5)))
        rows.append(Row("", "of it: validate+prints", f"{validate:.3f} s", target="(info)"))
        rows.append(Row("", "Ledger.read(dir) alone", f"{read:.3f} s", target="(info)"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(rows)


def header(quick: bool) -> None:
    reps = 1 if quick else 5
    print(f"flowgraph overhead benchmark — Python {platform.python_version()} ({sys.platform})")
    print(f"best of {reps} repetition(s); figures are noisy on a 2-core machine: compare ratios")
    print("measured in one run, not absolute numbers across runs.")
    print("timed: `await g.run()` on a fresh Graph (includes one g.validate(): networkx DAG,")
    print("topological order, per-node fingerprints); graph building with g.node() is not timed.")
    print("floor: plain asyncio TaskGroup DAG executor, same shape, no ledger (tables included),")
    print("timed alternately with flowgraph's no-ledger runs.")
    print("durable = run_dir ledger (ledger.json + events.jsonl, group commit) under /tmp.")
    print("an untimed warm-up run first pays the one-off lazy imports (networkx, runner).\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition instead of five")
    args = parser.parse_args()
    header(args.quick)
    asyncio.run(main(args.quick))
