"""The torture harness in small (benchmarks/torture.py runs it with 100 kills and prints the
figures): a mixed graph — steps, multi-turn role nodes with tools, a map, a review loop — run
as a real child process against the emulator over HTTP, SIGKILLed at random moments (some
during the creation of its run directory) and resumed until it is done."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("torture", ROOT / "benchmarks" / "torture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torture"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_random_kills_of_a_mixed_graph_lose_no_paid_work() -> None:
    torture = _harness()
    figures = torture.torture(kills=10, per_run=10, seed=7)
    report = "\n".join(torture.report(figures))
    assert figures.kills == 10, report
    assert figures.reads > 0, report  # the ledger was read while the child drove it
    assert figures.unreadable == [], report
    assert figures.unresumable == [] and figures.unfinished == [], report
    assert figures.passed_rerun == [], report
    # Only a call in flight at a kill is paid twice: one per record asking at that moment.
    assert figures.repaid_not_in_flight == [], report
    assert figures.reasked <= figures.repaid, report
    assert figures.repaid_per_kill_max <= figures.width, report
    assert figures.cost_mismatches == [] and figures.unbilled_in_ledger == 0, report
    assert figures.billed_calls > 0 and figures.ledger_usd > 0, report
    assert figures.ledger_usd == pytest.approx(figures.billed_usd - figures.lost_usd), report
    assert figures.ok, report


def test_a_request_is_told_apart_by_the_record_it_belongs_to() -> None:
    """The harness's own reading of a request: the record its task names (a reviser's task
    is the work's task plus the review, and names its round)."""
    torture = _harness()
    task = {"messages": [{"role": "user", "content": "[rec:fan[2]] Handle gamma."}]}
    assert torture.record_of(task) == "fan[2]"
    revise = "[rec:draft] Write.\n\nA reviewer asked for changes (round 2):\nMore."
    assert torture.record_of({"messages": [{"role": "user", "content": revise}]}) == "edit.revise2"
    parallel, serial = torture.graph_source(False), torture.graph_source(True)
    assert "concurrency=2" in parallel and 'after=["fan"]' in serial
