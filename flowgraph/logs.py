"""Logging: structlog on top of the standard ``logging`` module, under the name ``flowgraph``.

A library should be quiet until asked, so flowgraph's logs go to ``logging.getLogger("flowgraph")``
and show only where the application (or the ``flowgraph`` CLI) installs a handler; ``configure``
installs one that renders structlog events as console lines or JSON lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure", "get_logger"]

_SHARED: list[Any] = [
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def get_logger(**bound: Any) -> Any:
    """A structlog logger writing through the standard ``flowgraph`` logger."""
    return structlog.wrap_logger(
        logging.getLogger("flowgraph"),
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
    ).bind(**bound)


def configure(*, json: bool = False, level: int = logging.INFO) -> None:
    """Show flowgraph's logs on stderr, as console lines or (``json=True``) JSON lines."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=_SHARED,
        )
    )
    log = logging.getLogger("flowgraph")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
