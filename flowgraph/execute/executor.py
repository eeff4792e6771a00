"""NodeExecutor: where a node's work runs when it does not run in the coordinator's event loop.

The seam between one run and a cluster (``flowgraph.distributed.RayExecutor`` is the one
implementation). The run keeps everything that makes it one run: the ledger and its single
writer, the model-call path (limits, breaker, budget), events. An executor only moves the work:
a function step's call, or a role node's tool loop, whose every model call comes back through
``call`` and whose every turn comes back through ``report.note`` as it happens. Steering
messages for a role node reach its loop through a ``Steering`` the run hands the executor: the
run stays the one reader of the inbox and the one writer of what was delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from flowgraph.agent.loop import Caller, NodeReport
from flowgraph.declare.context import Context
from flowgraph.declare.nodes import RoleNode, StepNode
from flowgraph.events import Event
from flowgraph.tools.profiles import BUILTIN

__all__ = ["NodeExecutor", "Placed", "Steering", "runs_anywhere"]

# Called with where a unit of work ran (e.g. a cluster node's id), for its record.
Placed = Callable[[str], None]


class Steering(Protocol):
    """A role node's steering messages on their way to its loop elsewhere.

    The executor hands the loop what ``take`` returns (at dispatch, and with each model
    call's answer) and passes every journal delta the loop sends to ``noted``. A message stays
    pending in the ledger until the loop's ``s`` delta that carries it is noted; only then is
    it marked delivered, at that delta's turn.
    """

    def take(self, *, again: bool = False) -> list[str]:
        """The messages to hand over now: those that arrived since the last handover; with
        ``again`` (a new dispatch of the loop) also those handed before and not delivered."""
        ...

    def noted(self, delta: dict[str, Any]) -> None:
        """A journal delta of the loop, in order: an ``s`` delta delivers what it carries."""
        ...


@runtime_checkable
class NodeExecutor(Protocol):
    """Runs function steps and role nodes' tool loops somewhere else than this process."""

    @property
    def address(self) -> str | None:
        """Where it runs, as ``flowgraph run --ray`` takes it (``host:port``, ``auto``): a new
        run records it in its ledger settings (as ``ray``), so ``flowgraph resume`` runs there
        again; ``None``: nothing a resume could find again."""
        ...

    @property
    def shared_workspace(self) -> bool:
        """Whether every worker sees the run's workspace (shared storage); if not, roles with
        the built-in coding tools run on the coordinator, where the workspace is."""
        ...

    async def start(self) -> None:
        """Connect (idempotent); a ``ConfigError`` if the cluster cannot be reached."""
        ...

    def close(self) -> None:
        """Let go of the cluster (stopping one that ``start`` started itself)."""
        ...

    async def run_step(self, node: StepNode, ctx: Context, placed: Placed) -> Any:
        """Run ``node.func(ctx)`` elsewhere and return its output (its error, raised)."""
        ...

    async def run_role(
        self,
        node: RoleNode,
        ctx: Context,
        call: Caller,
        report: NodeReport,
        emit: Callable[[Event], None],
        placed: Placed,
        steering: Steering | None = None,
    ) -> Any:
        """Run ``node``'s tool loop elsewhere, as ``flowgraph.agent.loop.run_role`` would
        here: starting from ``report.replay``, each model call made through ``call``, each
        journal delta handed to ``report.note`` (and to ``steering.noted``) as it happens,
        the messages ``steering`` takes put before the loop's next turn, ``report`` filled in
        at the end."""
        ...


def runs_anywhere(node: RoleNode, shared_workspace: bool) -> bool:
    """Whether a role node may run away from the coordinator: it needs nothing only the
    coordinator holds — no advisor (its run-wide pool), no MCP servers (started here), no
    approvals (a person's decision arrives here), and, unless the workspace is shared, no
    coding tools (the workspace is here)."""
    role = node.role
    if node.advisor is not None or role.mcp_servers or role.approve:
        return False
    tools = role.tool_list
    if any(getattr(t, "approval", False) for t in tools):
        return False
    return shared_workspace or not any(t.name in BUILTIN for t in tools)
