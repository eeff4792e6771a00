"""The ``flowgraph`` command: run, resume, status, show, eval and demo — composed from the public
API.

A user mistake (a ``FlowgraphError``) prints one line and exits with code 2; a failed run exits
with 1; a stopped run (Ctrl-C, SIGTERM) records what was running and exits with 130.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from flowgraph import (
    ConfigError,
    FlowgraphError,
    Graph,
    Ledger,
    Pricing,
    RunOptions,
    RunResult,
    RunStatus,
)
from flowgraph.cli.batch import RayAddress, batch_command, executor_for
from flowgraph.cli.evaluate import eval_command
from flowgraph.cli.flags import Endpoints, with_endpoints_file
from flowgraph.cli.signals import cancelled_by_signals
from flowgraph.execute.options import EXECUTOR_SETTING

__all__ = ["DISTRIBUTION", "app", "invoke", "main"]

# The name this project is installed by (`pip install flowgraph-llm`); it imports as flowgraph.
DISTRIBUTION = "flowgraph-llm"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run graphs of specialist LLM roles, with a resumable ledger.",
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version(DISTRIBUTION)
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed; pip install -e .)"
        typer.echo(f"flowgraph {number} ({DISTRIBUTION})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Run graphs of specialist LLM roles, with a resumable ledger."""


RunDir = Annotated[Path, typer.Argument(help="A run directory (holds ledger.json).")]
LogJson = Annotated[bool, typer.Option("--log-json", help="Log JSON lines to stderr.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every event to stderr.")]
MaxCost = Annotated[
    float | None, typer.Option(min=0.0, help="Stop starting model calls past this many USD.")
]
Workspace = Annotated[
    Path | None, typer.Option(help="The directory the nodes work on (default RUN_DIR/workspace).")
]
MaxItems = Annotated[
    int | None, typer.Option(min=1, help="Checklist items this run takes on (default: all).")
]
Prices = Annotated[
    Path | None, typer.Option(help="A JSON or TOML price file (model id -> USD per MTok).")
]


def _prices(prices: Path | None) -> Pricing | None:
    """The price file's table, if one was given (it wins over the graph's own prices)."""
    return Pricing.from_file(prices) if prices is not None else None


def _recorded_ray(settings: dict[str, Any]) -> str | None:
    """The Ray address a run recorded when it started (``None``: it ran in its process)."""
    address = settings.get(EXECUTOR_SETTING)
    return address if isinstance(address, str) else None


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--input expects KEY=VALUE (or KEY:=JSON), got {pair!r}")
        if key.endswith(":"):
            try:
                values[key[:-1]] = json.loads(value)
            except json.JSONDecodeError as exc:
                name = key[:-1]
                raise ConfigError(
                    f"--input {name}: value is not JSON ({exc.msg}); write valid JSON after :=, "
                    f"e.g. {name}:='{{\"a\": 1}}', or use {name}=VALUE for plain text"
                ) from None
        else:
            values[key] = value
    return values


def _setup_logs(log_json: bool, verbose: bool) -> None:
    if log_json or verbose:
        from flowgraph.logs import configure

        configure(json=log_json)


async def _drive(graph: Graph, input: dict[str, Any] | None, options: RunOptions) -> RunResult:
    """Run with SIGINT/SIGTERM cancelling the run, so the ledger records what was running."""
    return await cancelled_by_signals(graph.run(input, options))


def _execute(graph: Graph, input: dict[str, Any] | None, options: RunOptions) -> None:
    """Run with a live view; say how it ended and what to do next."""
    from flowgraph.cli.progress import Progress

    run_dir = options.run_dir
    assert run_dir is not None  # the CLI always runs in a run directory
    with Progress() as progress:
        try:
            result = asyncio.run(
                _drive(graph, input, dataclasses.replace(options, on_event=progress))
            )
        except (asyncio.CancelledError, KeyboardInterrupt):
            result = None
    if result is None:
        _say(f"stopped; what was running is recorded. Resume: flowgraph resume {run_dir}")
        raise typer.Exit(130)
    doc = Ledger.read(run_dir)
    _say(f"run {result.run_id} {result.status}: {doc.current_state}")
    _say(f"ledger: {run_dir / 'ledger.json'}")
    _say(f"next: {doc.next_step}")
    _say(f"status: flowgraph status {run_dir}")
    # Waiting for a person or for the next batch of checklist items is not a failure.
    raise typer.Exit(1 if RunStatus(result.status).is_failure else 0)


def _say(text: str) -> None:
    """A line for people: on a terminal it wraps between words, not inside one."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=False).print(text, markup=False)
    else:
        typer.echo(text)


def _new_run(graph: Graph, run_dir: Path | None) -> tuple[Path, str | None]:
    """The run directory, and the run id when we name the directory ``runs/<run-id>``."""
    if run_dir is not None:
        return run_dir, None
    from flowgraph.execute.opening import new_run_id

    run_id = new_run_id(graph.name)
    return Path("runs") / run_id, run_id


@app.command()
def run(
    target: Annotated[str, typer.Argument(metavar="FILE[:GRAPH]", help="Where the graph is.")],
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="KEY=VALUE (KEY:=JSON), repeatable.")
    ] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (default runs/<id>).")] = None,
    max_concurrency: Annotated[int | None, typer.Option(min=1)] = None,
    max_cost_usd: MaxCost = None,
    prices: Prices = None,
    max_items: MaxItems = None,
    log_json: LogJson = False,
    verbose: Verbose = False,
    workspace: Workspace = None,
    endpoints: Endpoints = None,
    ray: RayAddress = None,
) -> None:
    """Run a graph defined in a Python file (or a pipeline .yaml naming agent files);
    resumes if --run-dir holds its ledger."""
    from flowgraph.cli.launch import load_graph

    _setup_logs(log_json, verbose)
    values = _parse_inputs(input or [])
    graph = load_graph(target)
    graph.validate()
    directory, run_id = _new_run(graph, run_dir)
    resuming = Ledger.exists(directory)
    values_or_none = values if values or not resuming else None
    recorded = _recorded_ray(Ledger.read(directory).settings) if resuming else None
    with executor_for(ray, directory, recorded) as executor:  # started here, stopped here
        options = RunOptions(run_dir=directory, run_id=run_id, max_concurrency=max_concurrency,
                             max_cost_usd=max_cost_usd, pricing=_prices(prices),
                             max_items=max_items, workspace=workspace,
                             executor=executor)  # fmt: skip
        _execute(graph, values_or_none, with_endpoints_file(options, endpoints, graph))


@app.command()
def resume(
    run_dir: RunDir,
    graph_target: Annotated[
        str | None, typer.Option("--graph", metavar="FILE[:GRAPH]", help="Graph to resume with.")
    ] = None,
    max_cost_usd: MaxCost = None,
    prices: Prices = None,
    max_items: MaxItems = None,
    log_json: LogJson = False,
    verbose: Verbose = False,
    workspace: Workspace = None,
    endpoints: Endpoints = None,
    ray: RayAddress = None,
) -> None:
    """Resume a run from its ledger: passed nodes are kept, the rest run."""
    from flowgraph.cli.launch import load_graph

    _setup_logs(log_json, verbose)
    doc = Ledger.read(run_dir)
    if graph_target is None:
        if not doc.source:
            raise ConfigError(
                f"{run_dir} was started from Python code, so its graph is unknown here; "
                "pass --graph FILE[:GRAPH], or call graph.run(run_dir=...) again"
            )
        graph = load_graph(doc.source["target"], doc.source.get("kwargs"))
    else:
        graph = load_graph(graph_target)
    recorded = _recorded_ray(doc.settings)  # where it ran, unless --ray says otherwise
    with executor_for(ray, run_dir, recorded) as executor:  # started here, stopped here
        options = RunOptions(run_dir=run_dir, max_cost_usd=max_cost_usd,
                             pricing=_prices(prices), max_items=max_items, workspace=workspace,
                             executor=executor)  # fmt: skip
        _execute(graph, None, with_endpoints_file(options, endpoints, graph))


@app.command()
def status(
    run_dir: RunDir,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Show a run's state from its ledger (safe while another process drives it)."""
    from flowgraph.cli.reports import as_it_stands, print_status, status_summary

    doc = as_it_stands(Ledger.read(run_dir), run_dir)
    if as_json:
        typer.echo(json.dumps(status_summary(doc), indent=2))
    else:
        print_status(doc)


@app.command()
def cost(
    run_dir: RunDir,
    as_json: Annotated[bool, typer.Option("--json", help="Print the roll-ups as JSON.")] = False,
) -> None:
    """Show what a run spent: tokens and USD per node, role, model and kind, and in total."""
    from flowgraph.cli.reports import cost_summary, print_cost

    _report(run_dir, as_json, cost_summary, print_cost)


@app.command()
def output(
    run_dir: RunDir,
    node: Annotated[str, typer.Argument(help="The node whose result to print.")],
    transcript: Annotated[
        bool, typer.Option("--transcript", help="Print the node's conversation instead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Print a node's output (or, with --transcript, its model conversation)."""
    from flowgraph.cli.output import node_output, render_transcript, transcript_of

    if transcript:
        archive = transcript_of(run_dir, node)
        typer.echo(json.dumps(archive, indent=2) if as_json else render_transcript(archive))
        return
    value = node_output(run_dir, node)
    if as_json or not isinstance(value, str):
        typer.echo(json.dumps(value, indent=2, default=str))
    else:
        typer.echo(value)


def _report(run_dir: Path, as_json: bool, summary: Any, table: Any) -> None:
    """Read the ledger (never taking the run over) and print it as JSON or as tables."""
    doc = Ledger.read(run_dir)
    if as_json:
        typer.echo(json.dumps(summary(doc), indent=2))
    else:
        table(doc)


@app.command()
def show(
    target: Annotated[str, typer.Argument(metavar="FILE[:GRAPH]")],
    format: Annotated[str, typer.Option("--format", help="Output format: mermaid.")] = "mermaid",
) -> None:
    """Print a graph's structure (Mermaid flowchart text)."""
    from flowgraph.cli.launch import load_graph

    if format != "mermaid":
        raise ConfigError(f"--format {format!r} is not supported; use --format mermaid")
    typer.echo(load_graph(target).render(), nl=False)


@app.command()
def demo(
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (default runs/<id>).")] = None,
    delay: Annotated[float, typer.Option(min=0.0, help="Seconds per scripted model turn.")] = 0.0,
    log_json: LogJson = False,
    verbose: Verbose = False,
) -> None:
    """Run the bundled feature-team graph offline, on SCRIPTED models (no API key needed)."""
    from flowgraph.cli.launch import load_graph

    _setup_logs(log_json, verbose)
    graph = load_graph("flowgraph.demo:offline_demo", {"delay": delay})
    directory, run_id = _new_run(graph, run_dir)
    _say(
        "flowgraph demo: five roles on SCRIPTED models, served by a local Messages-API "
        "emulator through the anthropic SDK (no network, no API key needed), working on a "
        f"sample project in {directory / 'workspace'}"
    )
    _execute(graph, None, RunOptions(run_dir=directory, run_id=run_id))


app.command("eval")(eval_command)
app.command("batch")(batch_command)

Note = Annotated[str, typer.Option("--note", help="Why; it reaches the downstream nodes.")]


@app.command()
def approve(run_dir: RunDir, node: Annotated[str, typer.Argument()], note: Note = "") -> None:
    """Approve an approval gate; `flowgraph resume DIR` then runs what waited on it."""
    _send(run_dir, "approve", node, note)


@app.command()
def reject(run_dir: RunDir, node: Annotated[str, typer.Argument()], note: Note = "") -> None:
    """Reject an approval gate; on resume what depends on it ends, with the note recorded."""
    _send(run_dir, "reject", node, note)


@app.command()
def steer(
    run_dir: RunDir,
    node: Annotated[str, typer.Argument()],
    message: Annotated[str, typer.Argument(help="The new instruction.")],
) -> None:
    """Send a running or pending node a new instruction; it sees it at its next model turn."""
    _send(run_dir, "steer", node, message)


def _send(run_dir: Path, kind: Any, node: str, text: str) -> None:
    from flowgraph.ledger.inbox import post

    post(run_dir, kind, node, text)
    after = {
        "approve": f"approved; `flowgraph resume {run_dir}` runs what waited on {node}",
        "reject": f"rejected; `flowgraph resume {run_dir}` ends what depends on {node}",
        "steer": f"sent; {node} sees it at its next model turn",
    }
    typer.echo(f"{node}: {after[kind]}")


def invoke(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return its exit code.

    A user mistake (a ``FlowgraphError`` or a usage error) prints one ``error: ...`` line on
    stderr and returns 2; a bug still raises, with its traceback.
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = app(args=None if argv is None else list(argv), prog_name="flowgraph",
                       standalone_mode=False)  # fmt: skip
    except FlowgraphError as exc:
        return _fail(str(exc))
    except _usage_error() as exc:
        if not exc.format_message():  # no arguments at all: the help was printed, no error
            return 0
        where = exc.ctx.command_path if exc.ctx else "flowgraph"
        return _fail(
            f"{exc.format_message().rstrip('.')}; use `{where} --help` to see what it takes"
        )
    except typer.Abort:
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console entry point (``flowgraph``)."""
    sys.exit(invoke())


def _show_warning(message: Any, category: Any, *where: Any, **more: Any) -> None:
    """flowgraph's own warnings as one ``warning: ...`` line; others as Python shows them."""
    from flowgraph.compile.validation import UnpricedModelWarning

    if issubclass(category, UnpricedModelWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _PYTHON_SHOWWARNING(message, category, *where, **more)


_PYTHON_SHOWWARNING = warnings.showwarning


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _usage_error() -> Any:
    """click's UsageError; typer >= 0.26 vendors click, older typer depends on it."""
    import importlib

    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            return importlib.import_module(module).UsageError
        except ImportError:
            continue
    raise RuntimeError(
        "typer's click is missing; reinstall it: pip install --force-reinstall flowgraph-llm"
    )  # a broken install
