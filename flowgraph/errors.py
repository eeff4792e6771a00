"""The one exception tree of flowgraph.

Every error a user can cause or meet is a ``FlowgraphError``; its message says what is wrong,
where, and how to fix it, in one line. The CLI prints that line and exits with code 2.

    FlowgraphError
    ├── GraphError            the graph definition is wrong; raised when the graph is built,
    │                         never mid-run (unknown dependency, cycle, missing template field...)
    ├── ConfigError           a setting or an argument is wrong (bad --input, no model client...)
    ├── ModelError            a model call failed; keeps ``status``, ``provider`` and ``model``
    │   └── TransientModelError   overload, 5xx, rate limit, connection: worth a retry or fallback
    │       ├── ModelTimeoutError the call took longer than its timeout
    │       └── EndpointUnreachableError  no connection could be opened to the endpoint
    ├── NodeError             a node could not finish (max turns, output never validated)
    ├── LedgerError           the run directory cannot be used as it is
    │   ├── LedgerCorruptError    ledger.json is not a readable ledger
    │   ├── LedgerVersionError    written by a newer flowgraph
    │   ├── LedgerMismatchError   the ledger belongs to another graph
    │   └── LedgerLockedError     another process is driving this run
    └── BudgetError           a cost budget would be crossed
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ConfigError",
    "EndpointUnreachableError",
    "FlowgraphError",
    "GraphError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerMismatchError",
    "LedgerVersionError",
    "ModelError",
    "ModelTimeoutError",
    "NodeError",
    "TransientModelError",
]


class FlowgraphError(Exception):
    """Root of every error flowgraph raises on purpose."""


class GraphError(FlowgraphError):
    """The graph definition is invalid. Raised while the graph is built, before anything runs."""


class ConfigError(FlowgraphError):
    """A setting, argument or environment variable is wrong or missing."""


class ModelError(FlowgraphError):
    """A model call failed.

    Attributes:
        status: the HTTP status, when there was one.
        provider: who served the call (``"anthropic"``, ``"scripted"``...).
        model: the model id that was asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str = "",
        model: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider = provider
        self.model = model
        self.retry_after = retry_after


class TransientModelError(ModelError):
    """A model call failed in a way that a retry or another model may get past."""


class ModelTimeoutError(TransientModelError):
    """A model call took longer than its timeout (the endpoint was reached, or may have been)."""


class EndpointUnreachableError(TransientModelError):
    """No connection could be opened: nothing listens at the URL, or the network is down.

    The router retries it briefly and a node does not retry it at all: waiting a minute would
    only hide a wrong base URL.
    """


class NodeError(FlowgraphError):
    """A node ran but could not produce a valid result."""


class LedgerError(FlowgraphError):
    """The run directory or its ledger cannot be used as it is. Nothing in it was changed."""


class LedgerCorruptError(LedgerError):
    """``ledger.json`` is missing fields, truncated, empty or not JSON."""


class LedgerVersionError(LedgerError):
    """The ledger was written by a newer schema than this flowgraph understands."""


class LedgerMismatchError(LedgerError):
    """The ledger records a run of a different graph."""


class LedgerWriteError(LedgerError):
    """The ledger could not be written (a full disk, a file-size limit, an I/O error); what is
    on disk is intact up to the last complete write."""


class LedgerLockedError(LedgerError):
    """Another process holds the run's lock."""


class BudgetError(FlowgraphError):
    """Starting another model call would cross a cost budget."""
