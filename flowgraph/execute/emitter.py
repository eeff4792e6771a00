"""Emitter: where a run's events go — the caller's ``on_event`` and structlog."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flowgraph.events import Event

__all__ = ["Emitter"]


class Emitter:
    """Sends each event to ``on_event`` (if given) and, when flowgraph's logger is on, logs it.

    Args:
        on_event: the caller's callback.
        log: a structlog logger bound to the run.
    """

    def __init__(self, on_event: Callable[[Event], None] | None, log: Any) -> None:
        self._on_event = on_event
        self._log = log
        self._log_on = logging.getLogger("flowgraph").isEnabledFor(logging.INFO)

    @property
    def listening(self) -> bool:
        """Whether anyone hears events (building them costs a little per node)."""
        on_event = self._on_event
        return self._log_on or (on_event is not None and getattr(on_event, "listening", True))

    def __call__(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
        if self._log_on:
            fields = {k: getattr(event, k) for k in event.__slots__ if k != "node"}
            self._log.info(type(event).__name__, node=getattr(event, "node", None), **fields)
