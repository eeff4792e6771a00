"""The heap a run starts on is left out of the cyclic garbage collector while the run goes.

A process that runs a graph has already imported the SDK, pydantic, networkx and their like:
a few hundred thousand objects that live as long as it does. CPython's collector scans every
one of them at each full collection, and a busy run (hundreds of streamed responses a second)
brings one on every second or two. In the throughput benchmark collecting took 12 % of a
run's CPU, and 6.5 % with those objects set aside: for the length of a run they are moved to
the collector's permanent generation (``gc.freeze``), and given back when the last run of the
process ends (``gc.unfreeze``).

Nothing is freed later than it would be otherwise except cyclic garbage made of objects that
existed before the run; whatever the run itself creates is collected as usual. A process that
froze its own heap (a pre-fork server), or turned the collector off, is left as it is; so is
one that sets ``FLOWGRAPH_GC_FREEZE=0``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator

__all__ = ["ENV", "run_heap"]

ENV = "FLOWGRAPH_GC_FREEZE"

_lock = threading.Lock()  # runs may go on in several threads, each in its own event loop
_runs = 0  # the runs of this process going on now
_frozen = False  # whether the first of them froze the heap (and the last gives it back)


@contextlib.contextmanager
def run_heap() -> Iterator[None]:
    """Around a run: freeze the heap when the first run of the process starts, unfreeze it
    when the last one ends (runs going on at once share one freeze)."""
    global _runs, _frozen
    with _lock:
        if _runs == 0:
            _frozen = _wanted()
            if _frozen:
                gc.freeze()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0 and _frozen:
                _frozen = False
                gc.unfreeze()


def _wanted() -> bool:
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return gc.isenabled() and gc.get_freeze_count() == 0
