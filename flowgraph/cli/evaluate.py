"""``flowgraph eval SUITE.py``: run a task suite under its configurations and compare them — a
table, ``eval.json``, and a chart of cost per task against completion rate."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flowgraph.cli.batch import RayAddress, executor_for
from flowgraph.cli.flags import Endpoints
from flowgraph.cli.launch import _exec_file as exec_file
from flowgraph.cli.signals import cancelled_by_signals
from flowgraph.errors import ConfigError
from flowgraph.evals import ConfigReport, Suite, TaskResult, failure_rule, report, run_suite
from flowgraph.execute.executor import NodeExecutor
from flowgraph.models.endpoint_file import EndpointFile

__all__ = ["eval_command", "write_chart"]


def load_suite(path: str) -> Suite:
    """The one ``Suite`` a Python file defines."""
    namespace = exec_file(Path(path))
    suites = [v for v in namespace.values() if isinstance(v, Suite)]
    if len(suites) != 1:
        raise ConfigError(
            f"{path} defines {len(suites)} Suite objects; an eval file defines exactly one "
            "(flowgraph.evals.Suite)"
        )
    return suites[0]


def eval_command(
    suite_file: Annotated[str, typer.Argument(metavar="SUITE.py", help="The task suite.")],
    out: Annotated[Path | None, typer.Option(help="Output directory (evals/<suite>).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks run at once.")] = 4,
    chart: Annotated[Path | None, typer.Option(help="Chart file (.png; default in --out).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ray: RayAddress = None,
    endpoints: Endpoints = None,
) -> None:
    """Compare configurations (executor solo, executor + advisor, strong solo) on a task suite:
    completion rate, cost per task, latency p50/p95, turns and consults. Resumes: finished
    tasks are kept."""
    suite = load_suite(suite_file)
    declared = EndpointFile.from_file(endpoints) if endpoints is not None else None
    directory = out or Path("evals") / suite.name
    console = Console(highlight=False, stderr=as_json, width=None if sys.stdout.isatty() else 160)
    if suite.label:
        console.print(suite.label)

    def heard(result: TaskResult, reused: bool) -> None:
        mark = "kept from an earlier eval" if reused else ("passed" if result.passed else "failed")
        console.print(f"{result.config} / {result.task}: {mark}")

    with executor_for(ray) as executor:
        try:
            results = asyncio.run(_drive(suite, directory, concurrency, heard, executor,
                                         declared))  # fmt: skip
        except (asyncio.CancelledError, KeyboardInterrupt):
            console.print(f"stopped; finished tasks are kept. Resume: flowgraph eval {suite_file}"
                          + (f" --out {out}" if out else ""))  # fmt: skip
            raise typer.Exit(130) from None
    directory.mkdir(parents=True, exist_ok=True)  # not before: a mistake found first leaves none
    rows = report(suite, results)
    rule = failure_rule(suite, rows)
    picture = write_chart(rows, chart or directory / "eval.png", suite.name)
    data = {"suite": suite.name, "configs": [asdict(r) for r in rows], "rule": rule,
            "chart": str(picture), "tasks": [asdict(r) for r in results]}  # fmt: skip
    (directory / "eval.json").write_text(json.dumps(data, indent=2))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _print(console, rows)
    console.print(rule)
    console.print(f"chart: {picture}")
    console.print(f"report: {directory / 'eval.json'}")


async def _drive(
    suite: Suite,
    out: Path,
    concurrency: int,
    heard: Any,
    executor: NodeExecutor | None,
    endpoints: EndpointFile | None,
) -> list[TaskResult]:
    if executor is not None:  # an unreachable cluster is one error line, not a failed task each
        await executor.start()
    work = run_suite(suite, out, concurrency=concurrency, on_done=heard, executor=executor,
                     endpoints=endpoints)  # fmt: skip
    return await cancelled_by_signals(work)


def _print(console: Console, rows: list[ConfigReport]) -> None:
    table = Table(title="eval", title_justify="left")
    for column in ("configuration", "tasks", "completion", "$/task", "executor $", "advisor $",
                   "latency p50", "latency p95", "turns/task", "consults/task"):  # fmt: skip
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for r in rows:
        table.add_row(r.config, str(r.tasks), f"{r.completion_rate:.0%}", f"${r.cost_per_task:.4f}",
                      f"${r.executor_per_task:.4f}", f"${r.advisor_per_task:.4f}",
                      f"{r.latency_p50_s:.2f}s", f"{r.latency_p95_s:.2f}s",
                      f"{r.turns_per_task:.1f}", f"{r.consults_per_task:.1f}")  # fmt: skip
    console.print(table)


def write_chart(rows: list[ConfigReport], path: Path, title: str) -> Path:
    """Cost per task (x) against completion rate (y), one labelled point per configuration."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "the eval chart needs matplotlib: pip install 'flowgraph-llm[eval]'"
        ) from None
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in rows:
        axes.scatter(r.cost_per_task, r.completion_rate * 100, s=90, zorder=3)
        axes.annotate(f"{r.config}\np95 {r.latency_p95_s:.2f}s", (r.cost_per_task,
                      r.completion_rate * 100), textcoords="offset points", xytext=(8, 6),
                      fontsize=9)  # fmt: skip
    axes.set_xlabel("cost per task (USD)")
    axes.set_ylabel("completion rate (%)")
    axes.set_ylim(-5, 110)
    axes.set_xlim(left=0, right=max([r.cost_per_task for r in rows] + [0.0]) * 1.35 or 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(f"{title}: cost per task against completion rate")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
