"""Batch: one run per input line, each with its own run directory, at most ``max_runs`` at once.

A run's directory is named from its line number and a hash of its input
(``00007-3f2a9c1b``), so the same command run again finds every run it started: a run that
passed is kept as it is (not opened, not run), any other is resumed, where its ledger keeps what
was done. The runs share this process's event loop and, given an executor, one cluster: each
run's ledger still has exactly one writer, the process driving the batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowgraph.errors import ConfigError, FlowgraphError
from flowgraph.execute.options import RunOptions
from flowgraph.graph import Graph
from flowgraph.ledger.schema import LedgerDoc
from flowgraph.ledger.store import Ledger
from flowgraph.status import RunStatus

__all__ = ["BatchRun", "read_inputs", "run_batch", "run_dir_for"]


@dataclass(frozen=True, slots=True)
class BatchRun:
    """How one input's run ended.

    Attributes:
        line: the input's line number (from 1).
        run_dir: its run directory.
        status: the run's status (``passed``, ``failed``...).
        cost_usd: what the run spent over all its processes (``None``: a price was unknown).
        kept: it had passed before this batch and was not run again.
        error: why it could not run, if it could not.
    """

    line: int
    run_dir: Path
    status: str
    cost_usd: float | None
    kept: bool = False
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the run passed."""
        return self.status == RunStatus.PASSED


def read_inputs(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The inputs of a JSON-lines file: ``(line number, object)`` for each non-blank line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the inputs file {path} ({exc.strerror}); pass a JSON-lines file, "
            "one JSON object per line"
        ) from None
    inputs: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path} line {number}: not JSON ({exc.msg}); write one JSON object per line"
            ) from None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path} line {number}: a {type(value).__name__}, not a JSON object; each line "
                'is one run\'s input, e.g. {"topic": "caching"}'
            )
        inputs.append((number, value))
    if not inputs:
        raise ConfigError(f"{path} holds no inputs; write one JSON object per line")
    return inputs


def run_dir_for(runs_dir: Path, line: int, input: Mapping[str, Any]) -> Path:
    """The stable run directory of the input on ``line``: the same line and input always
    give the same directory, so a batch run again resumes its runs."""
    digest = hashlib.sha256(json.dumps(input, sort_keys=True, default=str).encode()).hexdigest()
    return runs_dir / f"{line:05d}-{digest[:8]}"


async def run_batch(
    graph: Graph,
    inputs: Sequence[tuple[int, dict[str, Any]]],
    runs_dir: Path,
    *,
    max_runs: int = 4,
    options: RunOptions | None = None,
    on_done: Callable[[BatchRun], None] | None = None,
) -> list[BatchRun]:
    """Run ``graph`` once per input (resuming what an earlier batch left), at most
    ``max_runs`` at once; one ``BatchRun`` per input, in input order.

    A run that fails (or cannot start) does not stop the others; its error is in its
    ``BatchRun``. Cancelling the batch stops every run in flight, each recording what was
    running, so the same call resumes them.
    """
    if max_runs < 1:
        raise ConfigError(f"max_runs must be at least 1, got {max_runs}")
    base = options or RunOptions()
    if base.executor is not None:
        await base.executor.start()  # once, before any run directory is made
    limit = asyncio.Semaphore(max_runs)
    results: list[BatchRun | None] = [None] * len(inputs)

    async def one(index: int, line: int, input: dict[str, Any]) -> None:
        run_dir = run_dir_for(runs_dir, line, input)
        async with limit:
            result = await _run_one(graph, line, input, run_dir, base)
        results[index] = result
        if on_done is not None:
            on_done(result)

    async with asyncio.TaskGroup() as group:
        for index, (line, input) in enumerate(inputs):
            group.create_task(one(index, line, input))
    return [r for r in results if r is not None]


async def _run_one(
    graph: Graph, line: int, input: dict[str, Any], run_dir: Path, base: RunOptions
) -> BatchRun:
    if Ledger.exists(run_dir):
        doc = Ledger.read(run_dir)
        if doc.status == RunStatus.PASSED:
            return BatchRun(line, run_dir, doc.status, cost_of(doc), kept=True)
        given: dict[str, Any] | None = None  # a resume runs on the input it recorded
    else:
        given = input
    options = dataclasses.replace(base, run_dir=run_dir, run_id=base.run_id or run_dir.name)
    try:
        result = await graph.run(given, options)
    except FlowgraphError as exc:
        status = Ledger.read(run_dir).status if Ledger.exists(run_dir) else RunStatus.FAILED
        return BatchRun(line, run_dir, status, _cost_in(run_dir), error=str(exc))
    return BatchRun(line, run_dir, result.status, _cost_in(run_dir))


def _cost_in(run_dir: Path) -> float | None:
    return cost_of(Ledger.read(run_dir)) if Ledger.exists(run_dir) else 0.0


def cost_of(doc: LedgerDoc) -> float | None:
    """What a run spent, over all its records (``None`` if a price was unknown)."""
    total = 0.0
    for record in doc.nodes.values():
        if record.spend and record.cost_usd is None:
            return None
        total += record.cost_usd or 0.0
    return total
