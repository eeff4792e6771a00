"""Opening a run: checking its input, and creating, resuming or refusing its ledger."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flowgraph.compile.validation import ValidGraph
from flowgraph.errors import ConfigError
from flowgraph.graph import Graph
from flowgraph.ledger.store import Ledger

__all__ = ["check_input", "new_run_id", "open_ledger"]


def new_run_id(graph: str) -> str:
    """A sortable, readable run id: graph name, UTC time, and a little randomness."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{graph}-{stamp}-{secrets.token_hex(2)}"


def check_input(graph: Graph, given: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(graph.inputs))
    if unknown:
        known = ", ".join(graph.inputs) or "none"
        raise ConfigError(
            f"graph {graph.name!r} takes no input {', '.join(unknown)}; its inputs are: {known}"
        )
    values = {k: v for k, v in graph.inputs.items() if v is not ...}
    values.update(given)
    missing = [k for k in graph.inputs if k not in values]
    if missing:
        example = " ".join(f"--input {k}=..." for k in missing)
        raise ConfigError(f"graph {graph.name!r} needs input {', '.join(missing)}; pass {example}")
    try:
        json.dumps(values)
    except TypeError as exc:
        raise ConfigError(f"the run input must be JSON data ({exc})") from None
    return values


def open_ledger(
    valid: ValidGraph, input: Mapping[str, Any] | None, run_dir: Any, run_id: str | None
) -> Ledger:
    graph = valid.graph
    if run_dir is not None and Ledger.exists(run_dir):
        ledger = Ledger.open(run_dir, graph=graph.name)
        if input is not None and check_input(graph, input) != ledger.doc.input:
            ledger.close()
            raise ConfigError(
                f"{run_dir} was started with input {json.dumps(ledger.doc.input)}; resume it "
                "without new input, or start a new run in another directory"
            )
        return ledger
    values = check_input(graph, input)
    run_id = run_id or new_run_id(graph.name)
    if run_dir is None:
        # No directory, no resume: the graph's fingerprint would never be compared.
        return Ledger.memory(run_id=run_id, graph=graph.name, fingerprint="", input=values)
    ledger = Ledger.create(
        run_dir, run_id=run_id, graph=graph.name, fingerprint=valid.fingerprint, input=values
    )
    if graph.source is not None:
        ledger.update_run(source=graph.source)
    return ledger
