"""``flowgraph batch FILE --inputs inputs.jsonl``: one run per input line, each with its own run
directory, at most ``--max-runs`` at once, on this machine or (``--ray ADDRESS``) a Ray cluster;
run again, it resumes what did not finish. A summary table at the end."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flowgraph.cli.flags import Endpoints, with_endpoints_file
from flowgraph.cli.signals import cancelled_by_signals
from flowgraph.distributed.batch import BatchRun, read_inputs, run_batch
from flowgraph.errors import ConfigError
from flowgraph.execute.executor import NodeExecutor
from flowgraph.execute.options import RunOptions
from flowgraph.money.pricing import Pricing

__all__ = ["LOCAL", "RayAddress", "batch_command", "executor_for"]

LOCAL = "local"  # --ray local: nodes run in this process, whatever the run recorded

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run nodes on the Ray cluster at ADDRESS (host:port); `auto` starts a local one, "
        "`local` runs them in this process. A run records it: a resume goes back there "
        "unless given another.",
    ),
]


@contextmanager
def executor_for(
    given: str | None, run_dir: Path | None = None, recorded: str | None = None
) -> Iterator[NodeExecutor | None]:
    """The Ray executor for ``--ray ADDRESS``, or, without one, for the address the run in
    ``run_dir`` recorded (``recorded``); ``None`` for neither or ``local``. Let go of when the
    command is done (a cluster it started for ``auto`` stops with it)."""
    address = given if given is not None else recorded
    if address is None or address == LOCAL:
        yield None
        return
    from flowgraph.distributed.ray_executor import RayExecutor, RayUnavailable

    executor = RayExecutor(address)
    try:
        yield executor
    except RayUnavailable as exc:
        if given is not None or run_dir is None:
            raise
        raise ConfigError(
            f"{run_dir} was started with --ray {address} and resumes there, but {exc.reason}; "
            f"resume it elsewhere: `flowgraph resume {run_dir} --ray ADDRESS` (another "
            f"cluster) or `--ray {LOCAL}` (this machine)"
        ) from None
    finally:
        executor.close()


def batch_command(
    target: Annotated[str, typer.Argument(metavar="FILE[:GRAPH]", help="Where the graph is.")],
    inputs: Annotated[Path, typer.Option(help="A JSON-lines file: one run's input per line.")],
    runs_dir: Annotated[Path, typer.Option(help="Where the run directories go.")] = Path("runs"),
    max_runs: Annotated[int, typer.Option(min=1, help="Runs going at once.")] = 4,
    ray: RayAddress = None,
    max_cost_usd: Annotated[
        float | None, typer.Option(min=0.0, help="Each run's budget in USD.")
    ] = None,
    prices: Annotated[Path | None, typer.Option(help="A JSON or TOML price file.")] = None,
    endpoints: Endpoints = None,
) -> None:
    """Run a graph once per input line (each run in RUNS_DIR/<line>-<hash>); run it again to
    resume what did not finish. Prints passed / failed / cost."""
    from flowgraph.cli.launch import load_graph

    lines = read_inputs(inputs)
    graph = load_graph(target)
    graph.validate()
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

    def heard(run: BatchRun) -> None:
        said = "kept (passed before)" if run.kept else run.status
        console.print(f"line {run.line}: {said}" + (f": {run.error}" if run.error else ""))

    with executor_for(ray) as executor:
        options = RunOptions(max_cost_usd=max_cost_usd, executor=executor,
                             pricing=Pricing.from_file(prices) if prices else None)  # fmt: skip
        options = with_endpoints_file(options, endpoints, graph)  # one client for every run
        work = run_batch(graph, lines, runs_dir, max_runs=max_runs, options=options,
                         on_done=heard)  # fmt: skip
        try:
            results = asyncio.run(cancelled_by_signals(work))
        except (asyncio.CancelledError, KeyboardInterrupt):
            console.print("stopped; finished runs are kept. Resume: the same command again")
            raise typer.Exit(130) from None
    _print(console, results)
    raise typer.Exit(0 if all(r.passed for r in results) else 1)


def _print(console: Console, results: list[BatchRun]) -> None:
    table = Table(title="batch", title_justify="left")
    for column in ("line", "run", "status", "cost"):
        table.add_column(column, justify="right" if column in ("line", "cost") else "left")
    for r in results:
        cost = "unknown" if r.cost_usd is None else f"${r.cost_usd:.4f}"
        status = f"{r.status} (kept)" if r.kept else str(r.status)
        table.add_row(str(r.line), str(r.run_dir), status, cost)
    console.print(table)
    passed = sum(r.passed for r in results)
    costs = [r.cost_usd for r in results]
    total = "unknown" if None in costs else f"${sum(c or 0.0 for c in costs):.4f}"
    console.print(f"{passed} passed, {len(results) - passed} not passed, of {len(results)} "
                  f"runs; cost {total}")  # fmt: skip
