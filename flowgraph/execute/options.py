"""Run options: everything about *how* one run goes, as one typed, frozen value.

A graph carries defaults (``Graph(client=..., max_cost_usd=...)``); a call or the CLI gives
options of its own; ``RunOptions.over`` lays one over the other, field by field: what is set
wins, what is left ``None`` falls through. The declaration itself is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypedDict

from flowgraph.errors import ConfigError
from flowgraph.events import Event
from flowgraph.execute.executor import NodeExecutor
from flowgraph.models.endpoint_file import EndpointFile
from flowgraph.models.router import ModelLimits
from flowgraph.models.seam import Model
from flowgraph.money.advisor_budget import AdvisorBudget
from flowgraph.money.pricing import DEFAULT_PRICING, Pricing

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "EXECUTOR_SETTING",
    "RECORDED_SETTINGS",
    "RunArgs",
    "RunOptions",
]

DEFAULT_RETRY_BACKOFF = 0.5
# The plain settings a new run records in its ledger (``LedgerDoc.settings``), so a resume
# applies them unless it is given its own; prices and limits are recorded beside them.
RECORDED_SETTINGS = ("max_concurrency", "max_cost_usd", "max_items", "retry_backoff")
# Where the nodes ran (the executor's ``address``), named after the flag that gives it back:
# the executor is code, so a resume from Python passes its own; ``flowgraph resume`` makes one.
EXECUTOR_SETTING = "ray"


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """How a run goes; every field left ``None`` takes the graph's default.

    Attributes:
        run_dir: the run directory; a new run is created if it holds no ledger, else the run
            it holds is resumed. ``None``: the run keeps its records in memory only.
        client: the ``Model`` that serves requests (by default the graph's, else the
            Anthropic API when ``ANTHROPIC_API_KEY`` is set).
        max_concurrency: how many nodes may run at once.
        max_cost_usd: the most the whole run may spend, over all its processes.
        pricing: model prices; the built-in table by default.
        limits: per-model request rates and concurrency, by alias or id.
        max_items: how many checklist items this run takes on (``None``: all that are left).
        on_event: called with every ``Event`` as it happens.
        run_id: the id of a new run (by default the graph name, a UTC time and a suffix).
        source: where the graph can be loaded again (``{"target": "file.py:graph"}``), so
            ``flowgraph resume`` finds it; recorded in a new run's ledger.
        retry_backoff: the first retry's delay in seconds (it doubles, at most 8 s).
        workspace: the directory the nodes work on (e.g. your repository); by default
            ``run_dir / "workspace"``. Writer roles work in their own copies of it.
        advisor_budget: run-wide caps on advisor consults (uses and dollars, over every node).
        endpoints: named endpoints declared as data (``EndpointFile``, e.g. read from an
            endpoints file): they serve the run when no ``client`` is given, their prices are
            laid over ``pricing``, and they are recorded (URLs and variable names, never a
            secret) so a resume talks to the same endpoints.
        executor: where function steps and role nodes run (``flowgraph.distributed.RayExecutor``
            for a Ray cluster); ``None``: in this process. The ledger is written here either way.
            A new run records the executor's address (as ``ray``), so ``flowgraph resume`` runs
            there again; a resume from Python runs where its own ``executor`` says.
    """

    run_dir: Path | None = None
    client: Model | None = None
    max_concurrency: int | None = None
    max_cost_usd: float | None = None
    pricing: Pricing | None = None
    limits: Mapping[str, ModelLimits] | None = None
    max_items: int | None = None
    on_event: Callable[[Event], None] | None = None
    run_id: str | None = None
    source: Mapping[str, Any] | None = None
    retry_backoff: float | None = None
    workspace: Path | None = None
    advisor_budget: AdvisorBudget | None = None
    endpoints: EndpointFile | None = None
    executor: NodeExecutor | None = None

    def __post_init__(self) -> None:
        if self.run_dir is not None and not isinstance(self.run_dir, Path):
            object.__setattr__(self, "run_dir", Path(self.run_dir))
        if self.workspace is not None and not isinstance(self.workspace, Path):
            object.__setattr__(self, "workspace", Path(self.workspace))
        for name in ("max_concurrency", "max_items"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1 or None, got {value}")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ConfigError(f"max_cost_usd must be a positive amount, got {self.max_cost_usd}")

    @classmethod
    def of(cls, args: RunArgs) -> RunOptions:
        """Options from keyword arguments (``graph.run(run_dir=...)``)."""
        # run_dir may be given as a str; __post_init__ makes it a Path.
        return cls(**args)  # type: ignore[arg-type]

    def over(self, base: RunOptions) -> RunOptions:
        """These options laid over ``base``: each field set here wins, the rest come from
        ``base``."""
        values = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            values[f.name] = getattr(base, f.name) if mine is None else mine
        return RunOptions(**values)

    def settings(self) -> dict[str, Any]:
        """The settings a new run records in its ledger: every recordable field that is set,
        as JSON data (a ``Model`` client and ``on_event`` are code, and are not recorded; of an
        executor, its address)."""
        recorded: dict[str, Any] = {
            name: getattr(self, name)
            for name in RECORDED_SETTINGS
            if getattr(self, name) is not None
        }
        if self.pricing is not None:
            recorded["prices"] = self.pricing.table()
        if self.limits:
            recorded["limits"] = {model: asdict(limit) for model, limit in self.limits.items()}
        if self.endpoints is not None:
            recorded["endpoints"] = self.endpoints.to_record()
        if self.executor is not None and self.executor.address is not None:
            recorded[EXECUTOR_SETTING] = self.executor.address
        return recorded

    def with_settings(self, recorded: Mapping[str, Any] | None) -> RunOptions:
        """These options with the settings a ledger recorded filling every field left unset:
        what a resume is given wins, what it is not given is what the run started with (all
        but the executor, which is code: ``flowgraph resume`` builds it from the record)."""
        if not recorded:
            return self
        values: dict[str, Any] = {n: recorded[n] for n in RECORDED_SETTINGS if n in recorded}
        if "prices" in recorded:
            values["pricing"] = Pricing(recorded["prices"])
        if "limits" in recorded:
            values["limits"] = {m: ModelLimits(**v) for m, v in recorded["limits"].items()}
        if "endpoints" in recorded:
            values["endpoints"] = EndpointFile.from_record(recorded["endpoints"])
        return self.over(RunOptions(**values))

    def with_endpoints(self) -> RunOptions:
        """These options with ``endpoints`` put to use: the client built from them (their
        credentials read from the environment now) unless a ``client`` is given, and their
        prices laid over ``pricing`` (the built-in table when none is given)."""
        if self.endpoints is None:
            return self
        pricing = self.pricing
        if self.endpoints.prices:  # checked before any credential is looked for
            pricing = (pricing or DEFAULT_PRICING).with_prices(self.endpoints.priced())
        client = self.client if self.client is not None else self.endpoints.client()
        return replace(self, client=client, pricing=pricing)

    @property
    def backoff(self) -> float:
        """The first retry's delay in seconds."""
        return DEFAULT_RETRY_BACKOFF if self.retry_backoff is None else self.retry_backoff


class RunArgs(TypedDict, total=False):
    """The fields of ``RunOptions`` as keyword arguments of ``Graph.run``, ``Graph.start`` and
    ``Graph.run_sync`` (typed: a misspelt option is a type error)."""

    run_dir: str | Path | None
    client: Model | None
    max_concurrency: int | None
    max_cost_usd: float | None
    pricing: Pricing | None
    limits: Mapping[str, ModelLimits] | None
    max_items: int | None
    on_event: Callable[[Event], None] | None
    run_id: str | None
    source: Mapping[str, Any] | None
    retry_backoff: float | None
    workspace: str | Path | None
    advisor_budget: AdvisorBudget | None
    endpoints: EndpointFile | None
    executor: NodeExecutor | None
