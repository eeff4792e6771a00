"""Inbox: what people send a run — approvals, rejections, steering — from any process.

``flowgraph approve/reject/steer`` append one JSON line to ``inbox.jsonl`` in the run directory
(an ``O_APPEND`` write, so it needs no lock and never disturbs the process driving the run).
The driver is still the ledger's only writer: it reads new lines when a run starts and every
fraction of a second while it runs, and records them in the ledger; the ledger keeps how far
the inbox has been read, so each message is applied once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from flowgraph.errors import ConfigError
from flowgraph.ledger.reader import INBOX_FILE, inbox_messages
from flowgraph.ledger.store import Ledger, now_iso

__all__ = [
    "INBOX_FILE",
    "Inbox",
    "deliver_steering",
    "mark_delivered",
    "pending_steering",
    "post",
    "record_messages",
]

Kind = Literal["approve", "reject", "steer"]


def post(run_dir: str | Path, kind: Kind, node: str, text: str = "") -> dict[str, Any]:
    """Send ``kind`` for ``node`` to the run in ``run_dir``; refuse a node the run lacks."""
    path = Path(run_dir)
    doc = Ledger.read(path)  # refuses a directory that holds no readable ledger
    record = doc.nodes.get(node)
    if record is None:
        known = ", ".join(n for n, r in doc.nodes.items() if r.parent is None)
        raise ConfigError(f"run {doc.run_id} has no node {node!r}; its nodes are: {known}")
    if kind in ("approve", "reject") and record.kind != "gate" and not record.pending_approval:
        raise ConfigError(
            f"node {node!r} is a {record.kind} node, not an approval gate, and no tool call of "
            "it waits for approval; approve a gate node or a node that is waiting_approval"
        )
    if kind == "steer" and record.status in ("passed", "failed", "skipped", "not_taken"):
        raise ConfigError(
            f"node {node!r} already {record.status}; steer a node that is running or pending"
        )
    # A bad line already in the inbox would stop the run at its next read: say so now rather
    # than answer "approved" for a message the run would never get to.
    inbox_messages(path, doc.inbox_offset, doc.nodes)
    message = {"at": now_iso(), "kind": kind, "node": node, "text": text}
    line = (json.dumps(message) + "\n").encode()
    fd = os.open(path / INBOX_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return message


class Inbox:
    """The driver's reader of a run's inbox (or an in-memory one for runs without a directory)."""

    def __init__(self, run_dir: Path | None, offset: int) -> None:
        self.path = run_dir / INBOX_FILE if run_dir else None
        self.offset = offset
        self._memory: list[dict[str, Any]] = []
        self._nodes: Collection[str] = ()

    def post(self, kind: Kind, node: str, text: str = "") -> None:
        """Deliver in-process (``Run.steer``) without a file."""
        self._memory.append({"at": now_iso(), "kind": kind, "node": node, "text": text})

    def read_new(self) -> list[dict[str, Any]]:
        """Messages not read before, each checked against the schema and the run's nodes;
        a torn last line waits for its end."""
        messages, self._memory = self._memory, []
        if self.path is None or not self._grew(self.path):
            return messages
        fresh, self.offset = inbox_messages(self.path.parent, self.offset, self._nodes)
        return messages + [m.model_dump() for m in fresh]

    def _grew(self, path: Path) -> bool:
        """Whether the inbox may hold lines not read yet: one ``stat``, which a running role
        node pays before each turn (``inbox_messages`` checks the file itself when it has)."""
        try:
            return os.stat(path).st_size > self.offset
        except FileNotFoundError:  # nothing sent yet
            return False
        except OSError:  # the full read says what is wrong
            return True

    def knows(self, nodes: Collection[str]) -> None:
        """The records messages may be for (a live view: the run adds sub-records)."""
        self._nodes = nodes


def record_messages(ledger: Ledger, inbox: Inbox) -> None:
    """Record new messages in the ledger (by its one writer): a gate's decision, a node's
    pending steering; and how far the inbox has been read."""
    inbox.knows(ledger.doc.nodes)
    messages = inbox.read_new()
    for message in messages:
        node, kind = str(message["node"]), message["kind"]
        entry = {"text": str(message.get("text") or ""), "at": message.get("at")}
        if kind in ("approve", "reject"):
            ledger.update_node(node, decision={"kind": kind, **entry})
        elif kind == "steer":
            steering = [*ledger.node(node).steering, {**entry, "turn": None}]
            ledger.update_node(node, steering=steering)
    if messages and inbox.offset != ledger.doc.inbox_offset:
        ledger.update_run(inbox_offset=inbox.offset)


def deliver_steering(ledger: Ledger, record: str, turn: int) -> list[str]:
    """The steering texts ``record`` has not seen yet, marked delivered at ``turn``."""
    fresh = pending_steering(ledger, record)
    mark_delivered(ledger, record, [index for index, _ in fresh], turn)
    return [text for _, text in fresh]


def pending_steering(ledger: Ledger, record: str) -> list[tuple[int, str]]:
    """The steering messages of ``record`` not delivered yet: their places in its list (which
    only grows) and their texts."""
    steering = ledger.node(record).steering
    return [(i, str(s["text"])) for i, s in enumerate(steering) if s.get("turn") is None]


def mark_delivered(ledger: Ledger, record: str, indices: Collection[int], turn: int) -> None:
    """Mark the steering messages of ``record`` at ``indices`` delivered at ``turn``."""
    if not indices:
        return
    steering = ledger.node(record).steering
    delivered = [{**s, "turn": turn} if i in indices else s for i, s in enumerate(steering)]
    ledger.update_node(record, steering=delivered)
