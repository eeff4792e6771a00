"""flowgraph: workflow graphs of specialist LLM roles, run as parallel async nodes with a
resumable JSON ledger.

The public API, grouped by concept. Everything else lives in modules a user need not import.
"""

from flowgraph.declare.advisor import Advisor
from flowgraph.declare.aliases import MODEL_ALIASES, set_alias
from flowgraph.declare.context import Context
from flowgraph.declare.role import Role
from flowgraph.declare.tools import Tool, tool
from flowgraph.errors import (
    BudgetError,
    ConfigError,
    FlowgraphError,
    GraphError,
    LedgerCorruptError,
    LedgerError,
    LedgerLockedError,
    LedgerMismatchError,
    LedgerVersionError,
    ModelError,
    NodeError,
    TransientModelError,
)
from flowgraph.events import (
    AdvisorConsulted,
    AdvisorWarning,
    Event,
    FallbackTaken,
    ModelCalled,
    ModelTurn,
    NodeFinished,
    NodeRetrying,
    NodeStarted,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCalled,
)
from flowgraph.execute.options import RunOptions
from flowgraph.execute.result import RunResult
from flowgraph.execute.run import Run
from flowgraph.graph import Graph, NodeRef
from flowgraph.ledger.store import Ledger
from flowgraph.models.router import ModelLimits
from flowgraph.models.seam import Model, ModelRequest, ModelResponse, Usage
from flowgraph.money.advisor_budget import AdvisorBudget
from flowgraph.money.pricing import ModelPrice, Pricing
from flowgraph.status import NodeStatus, RunStatus

__version__ = "0.1.0"

__all__ = [
    # declaring graphs
    "Graph",
    "NodeRef",
    "Role",
    "Tool",
    "tool",
    "Context",
    "Advisor",
    "AdvisorBudget",
    # models
    "Model",
    "ModelRequest",
    "ModelResponse",
    "Usage",
    "MODEL_ALIASES",
    "set_alias",
    "ModelLimits",
    "Pricing",
    "ModelPrice",
    # running and results
    "Run",
    "RunOptions",
    "RunResult",
    "NodeStatus",
    "RunStatus",
    "Ledger",
    # events
    "Event",
    "RunStarted",
    "NodeStarted",
    "ModelTurn",
    "ModelCalled",
    "TextDelta",
    "ToolCalled",
    "FallbackTaken",
    "AdvisorConsulted",
    "AdvisorWarning",
    "NodeRetrying",
    "NodeFinished",
    "RunFinished",
    # errors
    "FlowgraphError",
    "GraphError",
    "ConfigError",
    "ModelError",
    "TransientModelError",
    "NodeError",
    "LedgerError",
    "LedgerCorruptError",
    "LedgerVersionError",
    "LedgerMismatchError",
    "LedgerLockedError",
    "BudgetError",
]
