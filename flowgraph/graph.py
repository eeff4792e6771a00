"""Graph: the user's handle on the three phases — declare, compile, execute.

``Graph`` is a ``Declaration`` (nodes, dependencies, patterns) plus run defaults and the verbs
that move it on: ``validate`` compiles it into a ``ValidGraph`` (checked before anything runs),
``run`` / ``start`` / ``run_sync`` execute it with ``RunOptions``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from flowgraph.compile.validation import ValidGraph
from flowgraph.declare.advisor import Advisor
from flowgraph.declare.builder import Declaration, NodeRef
from flowgraph.errors import ConfigError, GraphError
from flowgraph.execute.options import RunArgs, RunOptions
from flowgraph.execute.result import RunResult
from flowgraph.execute.run import Run
from flowgraph.models.router import ModelLimits
from flowgraph.models.seam import Model
from flowgraph.money.advisor_budget import AdvisorBudget
from flowgraph.money.pricing import Pricing

__all__ = ["Graph", "NodeRef"]


class Graph(Declaration):
    """A declarative graph of roles and steps.

    Args:
        name: the graph's name; a ledger records it and refuses to resume another graph's run.
        model: the default model for role nodes whose role says ``model="inherit"``.
        inputs: names of the run input fields that task templates may use; a mapping gives
            defaults (use ``...`` for a required field).
        max_concurrency: how many nodes may run at once; ``None`` for no limit.
        client: the ``Model`` that serves requests; by default the Anthropic API when
            ``ANTHROPIC_API_KEY`` is set.
        max_cost_usd: the most the whole run may spend (over all its processes).
        pricing: model prices (``flowgraph.Pricing``); the built-in table by default.
        limits: per-model request rates and concurrency (``ModelLimits``), by alias or id.
        advisor: the default ``Advisor`` for roles that say ``advisor="inherit"`` (the default).
        advisor_budget: run-wide caps on advisor consults, in uses and dollars, shared by all
            nodes (``AdvisorBudget(max_uses=3, reserve={"reviewer": 1})``).

    Example:
        >>> g = Graph("team", model="sonnet", inputs=["feature"])
        >>> plan = g.node("plan", architect, "Plan {feature}")
        >>> api = g.node("api", backend, "Build the API for this plan: {plan}")
        >>> plan >> api  # or after=["plan"]
    """

    def __init__(
        self,
        name: str,
        *,
        model: str = "sonnet",
        inputs: Sequence[str] | Mapping[str, Any] = (),
        max_concurrency: int | None = None,
        client: Model | None = None,
        max_cost_usd: float | None = None,
        pricing: Pricing | None = None,
        limits: Mapping[str, ModelLimits] | None = None,
        advisor: Advisor | None = None,
        advisor_budget: AdvisorBudget | None = None,
    ) -> None:
        super().__init__(name, model=model, inputs=inputs, advisor=advisor)
        if max_concurrency is not None and max_concurrency < 1:
            raise GraphError(f"graph {name!r}: max_concurrency must be at least 1 or None")
        if max_cost_usd is not None and max_cost_usd <= 0:
            raise GraphError(f"graph {name!r}: max_cost_usd must be a positive amount or None")
        self.max_concurrency = max_concurrency
        self.client = client
        self.max_cost_usd = max_cost_usd
        self.pricing = pricing
        self.limits = dict(limits or {})
        self.advisor_budget = advisor_budget
        # Where the graph was loaded from (the CLI's loader says), so `flowgraph resume` can
        # find it again.
        self.source: dict[str, Any] | None = None
        self._validated: tuple[int, ValidGraph] | None = None

    @property
    def defaults(self) -> RunOptions:
        """The run options this graph gives every run unless a run says otherwise."""
        return RunOptions(
            client=self.client,
            max_concurrency=self.max_concurrency,
            max_cost_usd=self.max_cost_usd,
            pricing=self.pricing,
            limits=self.limits,
            source=self.source,
            advisor_budget=self.advisor_budget,
        )

    def validate(self) -> ValidGraph:
        """Check the whole graph and return its validated form; raise ``GraphError`` if wrong."""
        if self._validated is None or self._validated[0] != self.version:
            self._validated = (self.version, ValidGraph.build(self))
        return self._validated[1]

    def render(self) -> str:
        """The graph as Mermaid flowchart text."""
        return self.validate().render()

    async def run(
        self,
        input: Mapping[str, Any] | None = None,
        options: RunOptions | None = None,
        **args: Unpack[RunArgs],
    ) -> RunResult:
        """Run the graph; with ``run_dir``, record a ledger there, or resume the one it holds.

        Args:
            input: the run input (fields named in ``inputs``).
            options: how the run goes (``RunOptions``); keyword arguments of the same names
                (``run_dir=``, ``client=``, ``max_cost_usd=``...) override single fields.
        """
        return await self.start(input, options, **args)

    def start(
        self,
        input: Mapping[str, Any] | None = None,
        options: RunOptions | None = None,
        **args: Unpack[RunArgs],
    ) -> Run:
        """Start a run in the background (inside a running event loop) and return its handle:
        ``run.steer(node, text)`` while it runs, ``await run`` for its ``RunResult``. Takes
        the arguments of ``run``."""
        return Run(self.validate(), input, self._options(options, args))

    def run_sync(
        self,
        input: Mapping[str, Any] | None = None,
        options: RunOptions | None = None,
        **args: Unpack[RunArgs],
    ) -> RunResult:
        """``run`` for scripts: starts an event loop and blocks until the run ends."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise ConfigError(
                "run_sync was called inside a running event loop (Jupyter, or async code); "
                "use `await graph.run(...)` there instead"
            )
        chosen = self._options(options, args)

        async def run_and_close() -> RunResult:
            try:
                return await Run(self.validate(), input, chosen)
            finally:
                # This loop ends here: close the client's connections while it still runs.
                close = getattr(chosen.client, "aclose", None)
                if close is not None:
                    await close()

        return asyncio.run(run_and_close())

    def _options(self, options: RunOptions | None, args: RunArgs) -> RunOptions:
        given = RunOptions.of(args).over(options) if options is not None else RunOptions.of(args)
        return given.over(self.defaults)
