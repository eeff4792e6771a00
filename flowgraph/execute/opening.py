"""Opening a run: checking its input, creating, resuming or refusing its ledger, and where its
nodes may write files."""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowgraph.compile.validation import ValidGraph
from flowgraph.errors import ConfigError
from flowgraph.execute.options import RunOptions
from flowgraph.ledger.store import Ledger

__all__ = ["Workplace", "check_input", "new_run_id", "open_ledger"]


def new_run_id(graph: str) -> str:
    """A sortable, readable run id: graph name, UTC time, and a little randomness."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{graph}-{stamp}-{secrets.token_hex(2)}"


def check_input(valid: ValidGraph, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run input: ``given`` over the graph's defaults, every field known and present."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(valid.inputs))
    if unknown:
        known = ", ".join(valid.inputs) or "none"
        raise ConfigError(
            f"graph {valid.name!r} takes no input {', '.join(unknown)}; its inputs are: {known}"
        )
    values = {k: v for k, v in valid.inputs.items() if v is not ...}
    values.update(given)
    missing = [k for k in valid.inputs if k not in values]
    if missing:
        example = " ".join(f"--input {k}=..." for k in missing)
        raise ConfigError(f"graph {valid.name!r} needs input {', '.join(missing)}; pass {example}")
    try:
        json.dumps(values)
    except TypeError as exc:
        raise ConfigError(f"the run input must be JSON data ({exc})") from None
    return values


def open_ledger(valid: ValidGraph, input: Mapping[str, Any] | None, options: RunOptions) -> Ledger:
    """The run's ledger: resumed from ``options.run_dir`` if it holds one, else a new one
    (in memory when there is no run directory)."""
    run_dir = options.run_dir
    if run_dir is not None and Ledger.exists(run_dir):
        ledger = Ledger.open(run_dir, graph=valid.name)
        if input is not None and check_input(valid, input) != ledger.doc.input:
            ledger.close()
            raise ConfigError(
                f"{run_dir} was started with input {json.dumps(ledger.doc.input)}; resume it "
                "without new input, or start a new run in another directory"
            )
        return ledger
    values = check_input(valid, input)
    run_id = options.run_id or new_run_id(valid.name)
    if run_dir is None:
        # No directory, no resume: the graph's fingerprint would never be compared.
        return Ledger.memory(run_id=run_id, graph=valid.name, fingerprint="", input=values)
    ledger = Ledger.create(run_dir, run_id=run_id, graph=valid.name,
                           fingerprint=valid.fingerprint, input=values,
                           source=options.source)  # fmt: skip
    ledger.update_run(settings=options.settings())
    ledger.snapshot()  # the settings are in the ledger before anything runs
    return ledger


@dataclass(frozen=True, slots=True)
class Workplace:
    """Where a run's nodes work: the run directory (absolute, so tools and subprocesses that
    change directory still find it) and the workspace they may write to."""

    run_dir: Path | None
    workspace: Path

    @classmethod
    def of(cls, ledger: Ledger, workspace_dir: Path | None = None) -> Workplace:
        run_dir = ledger.run_dir.resolve() if ledger.run_dir else None
        if workspace_dir is not None:
            return cls(run_dir, workspace_dir.resolve())
        workspace = (
            run_dir / "workspace"
            if run_dir
            else Path(tempfile.gettempdir()) / f"flowgraph-{ledger.doc.run_id}"
        )
        return cls(run_dir, workspace)
