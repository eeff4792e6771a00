"""The plain-words fields of a ledger — ``current_state``, ``next_step``, the features list and
the cost roll-ups — derived from its node records before each snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flowgraph.ledger.store import Feature, LedgerDoc
from flowgraph.money.accounting import rollup

__all__ = ["describe"]

_SAID = {"approve": "approved", "reject": "rejected"}


def describe(doc: LedgerDoc, run_dir: Path | None) -> None:
    """Refresh the plain-words fields of a ledger: ``current_state``, ``next_step``, features,
    and the cost roll-ups. Sub-records (map items, review rounds...) are counted in costs but
    not as nodes; a checklist's features are its items and only its check changes them."""
    by_status: dict[str, list[str]] = {}
    top = {n: r for n, r in doc.nodes.items() if r.parent is None}
    for name, record in top.items():
        by_status.setdefault(record.status, []).append(name)
    passed = len(by_status.get("passed", []))
    parts = [f"{passed} of {len(top)} nodes passed"]
    for status in ("running", "waiting_approval", "incomplete", "failed", "skipped",
                   "interrupted", "budget_exceeded", "pending", "not_taken"):  # fmt: skip
        names = by_status.get(status, [])
        if status == "waiting_approval":
            names = [_with_decision(doc, n) for n in names]
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            parts.append(f"{status}: {', '.join(names[:5])}{more}")
    parts += [f"route {n} chose {r.route}" for n, r in doc.nodes.items() if r.route is not None]
    if doc.checklist:
        done = sum(1 for f in doc.features if f.passes)
        parts.append(f"checklist {done} of {len(doc.features)} items pass")
    costs = rollup((n, r.role, r.spend) for n, r in doc.nodes.items() if r.spend)
    doc.costs = costs
    if costs["run"]["calls"]:
        usd = costs["run"]["cost_usd"]
        parts.append("cost unknown (unpriced models)" if usd is None else f"cost ${usd:.4f}")
    doc.current_state = f"run {doc.status}; " + "; ".join(parts)
    doc.next_step = _next_step(doc, by_status, run_dir)
    if not doc.checklist:
        doc.features = [  # a branch a route did not take is not work left to do
            Feature.model_construct(name=n, passes=r.status == "passed")
            for n, r in top.items()
            if r.status != "not_taken"
        ]


def _next_step(doc: LedgerDoc, by_status: Mapping[str, list[str]], run_dir: Path | None) -> str:
    where = str(run_dir) if run_dir else "<run dir>"
    status = doc.status
    if status == "passed":
        if by_status.get("not_taken"):
            return (
                "nothing left to do: every node passed or was on a branch its route did not "
                "take; outputs are in ledger.json"
            )
        return "nothing left to do: every node passed; outputs are in ledger.json"
    if status == "running":
        return f"the run is in progress; `flowgraph status {where}` shows it"
    if status == "budget_exceeded":
        return (
            f"the budget stopped the run; raise it and resume: "
            f"`flowgraph resume {where} --max-cost-usd <more>`"
        )
    failed = by_status.get("failed", [])
    # A gate a person rejected failed as it should: nothing to fix, only to decide again.
    rejected = [n for n in failed if doc.nodes[n].kind == "gate" and _decided(doc, n) == "reject"]
    broken = [n for n in failed if n not in rejected]
    if broken:
        return (
            f"fix the failure of {', '.join(broken[:3])} (see its error), then "
            f"`flowgraph resume {where}` re-runs it and the nodes it blocked"
        )
    if rejected:
        return (
            f"{', '.join(rejected)} was rejected by a person, so what depends on it did not "
            f"run; to go ahead after all: `flowgraph approve {where} {rejected[0]} --note ...`, "
            f"then `flowgraph resume {where}`"
        )
    waiting = by_status.get("waiting_approval", [])
    if waiting:
        return _approval_step(doc, waiting, where)
    if status == "incomplete" and doc.checklist:
        return _checklist_step(doc, where)
    return f"`flowgraph resume {where}` continues where the run stopped"


def _with_decision(doc: LedgerDoc, name: str) -> str:
    """``gate (approved)``: a waiting node a person has decided on, not yet resumed."""
    said = _SAID.get(_decided(doc, name) or "")
    return f"{name} ({said})" if said else name


def _decided(doc: LedgerDoc, name: str) -> str | None:
    """``"approve"`` or ``"reject"`` when a person decided on ``name``; None otherwise."""
    decision = doc.nodes[name].decision
    return str(decision.get("kind")) if decision else None


def _approval_step(doc: LedgerDoc, waiting: list[str], where: str) -> str:
    """What to do about nodes waiting for a person: decide, or resume once decided (a decision
    sent with ``flowgraph approve``/``reject`` is acted on when the run resumes)."""
    undecided = [n for n in waiting if _decided(doc, n) is None]
    if undecided:
        return (
            f"a person must approve {', '.join(undecided)}: `flowgraph approve {where} "
            f"{undecided[0]} --note ...` (or reject), then `flowgraph resume {where}`"
        )
    approved = [n for n in waiting if _decided(doc, n) == "approve"]
    rejected = [n for n in waiting if n not in approved]
    said = [f"{', '.join(names)} {word} by a person" for names, word in
            ((approved, "approved"), (rejected, "rejected")) if names]  # fmt: skip
    does = [what for names, what in ((approved, "runs what waited"),
            (rejected, "ends what depends on the rejected")) if names]  # fmt: skip
    return f"{'; '.join(said)}: `flowgraph resume {where}` {' and '.join(does)}"


def _checklist_step(doc: LedgerDoc, where: str) -> str:
    left = [f.name for f in doc.features if not f.passes]
    step = (
        f"{len(doc.features) - len(left)} of {len(doc.features)} checklist items pass; "
        f"next: {', '.join(left[:3])}; `flowgraph resume {where} --max-items K` takes the next K"
    )
    record = doc.nodes.get(doc.checklist or "")
    failure = getattr(record, "last_failure", None) if record else None
    if isinstance(failure, dict) and failure.get("item") in left:
        step += f"; item {failure['item']!r} failed its check: {failure.get('error')}"
    return step
