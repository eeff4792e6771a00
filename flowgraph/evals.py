"""Eval: a task suite run under several configurations, compared on what the advisor's own
guidance says to compare — task completion rate, cost per task and latency p95.

A ``Suite`` names its tasks (an input and a pass/fail check each) and builds the graph for a
configuration (``Config``: the executor model, the advisor, per-role models). The default
configurations are the published three: executor solo, executor + advisor, strong model solo.
Each task of each configuration runs in its own run directory, so an interrupted eval resumes:
finished tasks are read back, not re-run, and a task that was running resumes from its ledger
without paying again for what it had recorded. ``flowgraph eval SUITE.py`` prints the table,
writes ``eval.json`` and a chart.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flowgraph.declare.advisor import Advisor
from flowgraph.errors import ConfigError
from flowgraph.execute.executor import NodeExecutor
from flowgraph.execute.options import RunOptions
from flowgraph.execute.result import RunResult
from flowgraph.graph import Graph
from flowgraph.ledger.store import Ledger
from flowgraph.models.endpoint_file import EndpointFile
from flowgraph.models.seam import Model

__all__ = ["DEFAULT_CONFIGS", "Config", "ConfigReport", "Suite", "Task", "run_suite"]

FAILURE_RULE = 0.30  # the published rule: executor solo failing more than this share of tasks


@dataclass(frozen=True)
class Task:
    """One task: the run input and a check of the run's result (True: the task is done)."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[RunResult], bool] | None = None


@dataclass(frozen=True)
class Config:
    """A configuration to compare: the executor model, its advisor (``None``: solo),
    per-role models (role name -> model) over the suite's defaults, and ``routes``: for a
    routed configuration, the model per label a classifier picks from, task by task
    (``{"easy": "haiku", "hard": "opus"}``; the suite's graph builds it with
    ``Graph.route_model``)."""

    name: str
    model: str = "haiku"
    advisor: Advisor | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    routes: Mapping[str, str] = field(default_factory=dict)


DEFAULT_CONFIGS = (
    Config("executor solo", "haiku"),
    Config("executor + advisor", "haiku", Advisor("opus", max_uses=3)),
    Config("strong solo", "opus"),
)


@dataclass
class Suite:
    """A task suite.

    Args:
        name: the suite's name (the default output directory is ``evals/<name>``).
        graph: builds the graph a configuration runs (it gets the ``Config``).
        tasks: the tasks.
        configs: the configurations to compare (the published three by default); the first
            solo configuration is the executor the 30 % rule looks at.
        client: a function giving the ``Model`` to run on (by default the Anthropic API).
        label: a line printed above the table (say here when the suite is scripted).
    """

    name: str
    graph: Callable[[Config], Graph]
    tasks: Sequence[Task]
    configs: Sequence[Config] = DEFAULT_CONFIGS
    client: Callable[[], Model] | None = None
    label: str = ""


@dataclass
class TaskResult:
    config: str
    task: str
    passed: bool
    status: str
    wall_s: float
    executor_usd: float
    advisor_usd: float
    turns: int
    consults: int
    error: str = ""


@dataclass
class ConfigReport:
    """One configuration's figures over the suite."""

    config: str
    tasks: int
    completion_rate: float
    cost_per_task: float
    executor_per_task: float
    advisor_per_task: float
    latency_p50_s: float
    latency_p95_s: float
    turns_per_task: float
    consults_per_task: float


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..100) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "x"


async def run_suite(
    suite: Suite,
    out: Path,
    *,
    concurrency: int = 4,
    on_done: Callable[[TaskResult, bool], None] | None = None,
    executor: NodeExecutor | None = None,
    endpoints: EndpointFile | None = None,
) -> list[TaskResult]:
    """Run every task under every configuration, ``concurrency`` at a time; tasks finished by an
    earlier eval in ``out`` are read back (``on_done(result, reused)`` hears of each). With an
    ``executor`` (``flowgraph.distributed.RayExecutor``) the runs' nodes go to its cluster.
    With ``endpoints`` (an endpoints file) every run talks to them instead of the suite's
    ``client``, priced at their prices."""
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    names = [c.name for c in suite.configs]
    if len(set(map(_slug, names))) != len(names):
        raise ConfigError(f"suite {suite.name!r}: configuration names must differ: {names}")
    gate = asyncio.Semaphore(concurrency)
    client = (endpoints.client() if endpoints is not None  # one client for all the runs
              else suite.client() if suite.client is not None else None)  # fmt: skip
    graphs = {c.name: suite.graph(c) for c in suite.configs}

    async def one(config: Config, task: Task) -> TaskResult:
        run_dir = out / _slug(config.name) / _slug(task.name)
        done = run_dir / "eval.json"
        if done.exists():
            result = TaskResult(**json.loads(done.read_text()))
            if on_done is not None:
                on_done(result, True)
            return result
        async with gate:
            result = await _run_task(graphs[config.name], config, task, run_dir,
                                     RunOptions(client=client, executor=executor,
                                                endpoints=endpoints))  # fmt: skip
        done.write_text(json.dumps(asdict(result), indent=2))
        if on_done is not None:
            on_done(result, False)
        return result

    try:
        async with asyncio.TaskGroup() as group:
            jobs = [group.create_task(one(c, t)) for c in suite.configs for t in suite.tasks]
    finally:
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()
    return [job.result() for job in jobs]


async def _run_task(
    graph: Graph,
    config: Config,
    task: Task,
    run_dir: Path,
    options: RunOptions,
) -> TaskResult:
    started = time.monotonic()
    previous = _elapsed(run_dir)
    error = ""
    try:
        fresh = not Ledger.exists(run_dir)
        result = await graph.run(task.input if fresh else None, options, run_dir=run_dir)
        passed = result.ok and (task.check is None or bool(task.check(result)))
        status = result.status
    except Exception as exc:  # a failing task is a result, not the end of the eval
        passed, status, error = False, "error", f"{type(exc).__name__}: {exc}"
    wall = previous + time.monotonic() - started
    (run_dir / "elapsed").write_text(f"{wall}")
    doc = Ledger.read(run_dir) if Ledger.exists(run_dir) else None
    executor = advisor = 0.0
    turns = consults = 0
    for record in doc.nodes.values() if doc else ():
        turns += record.turns
        consults += sum(1 for c in record.consults if c.get("outcome") == "ok")
        for row in record.spend.values():
            usd = float(row.get("cost_usd") or 0.0)
            if row.get("kind") == "advisor":
                advisor += usd
            else:
                executor += usd
    return TaskResult(config.name, task.name, passed, status, round(wall, 4), executor,
                      advisor, turns, consults, error)  # fmt: skip


def _elapsed(run_dir: Path) -> float:
    """Wall time an interrupted earlier attempt of this task already took."""
    try:
        return float((run_dir / "elapsed").read_text())
    except (OSError, ValueError):
        return 0.0


def report(suite: Suite, results: Sequence[TaskResult]) -> list[ConfigReport]:
    """Per configuration: completion rate, cost per task, latency p50/p95, turns, consults."""
    rows = []
    for config in suite.configs:
        mine = [r for r in results if r.config == config.name]
        n = len(mine) or 1
        walls = [r.wall_s for r in mine]
        executor = sum(r.executor_usd for r in mine) / n
        advisor = sum(r.advisor_usd for r in mine) / n
        rows.append(ConfigReport(
            config.name, len(mine), sum(r.passed for r in mine) / n, executor + advisor,
            executor, advisor, percentile(walls, 50), percentile(walls, 95),
            sum(r.turns for r in mine) / n, sum(r.consults for r in mine) / n,
        ))  # fmt: skip
    return rows


def failure_rule(suite: Suite, rows: Sequence[ConfigReport]) -> str:
    """The published 30 % rule, applied to the executor solo configuration and stated."""
    pairs = zip(suite.configs, rows, strict=True)
    solo = next((r for c, r in pairs if c.advisor is None and not c.routes), None)
    if solo is None:
        return "30 % rule: no solo configuration to apply it to"
    failed = 1 - solo.completion_rate
    verdict = (
        "the strong model alone may be more cost-effective than adding an advisor"
        if failed > FAILURE_RULE
        else "the advisor pattern is worth trying against the strong model"
    )
    return (
        f"30 % rule: {solo.config} fails {failed:.0%} of tasks "
        f"({'more' if failed > FAILURE_RULE else 'not more'} than 30 %): {verdict}"
    )
