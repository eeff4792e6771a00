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
from pathlib import Path
from typing import Any, Literal

from flowgraph.errors import ConfigError
from flowgraph.ledger.store import Ledger, now_iso

__all__ = ["INBOX_FILE", "Inbox", "deliver_steering", "post", "record_messages"]

INBOX_FILE = "inbox.jsonl"
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
    if kind == "steer" and record.status in ("passed", "failed", "skipped"):
        raise ConfigError(
            f"node {node!r} already {record.status}; steer a node that is running or pending"
        )
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

    def post(self, kind: Kind, node: str, text: str = "") -> None:
        """Deliver in-process (``Run.steer``) without a file."""
        self._memory.append({"at": now_iso(), "kind": kind, "node": node, "text": text})

    def read_new(self) -> list[dict[str, Any]]:
        """Messages not read before; a torn last line waits for its end."""
        messages, self._memory = self._memory, []
        if self.path is None:
            return messages
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return messages
        if size <= self.offset:
            return messages
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            tail = fh.read(size - self.offset)
        for line in tail.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            self.offset += len(line)
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours to crash on; skip it
            if isinstance(message, dict) and {"kind", "node"} <= message.keys():
                messages.append(message)
        return messages


def record_messages(ledger: Ledger, inbox: Inbox) -> None:
    """Record new messages in the ledger (by its one writer): a gate's decision, a node's
    pending steering; and how far the inbox has been read."""
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
    steering = ledger.node(record).steering
    fresh = [s for s in steering if s.get("turn") is None]
    if not fresh:
        return []
    delivered = [{**s, "turn": turn} if s.get("turn") is None else s for s in steering]
    ledger.update_node(record, steering=delivered)
    return [str(s["text"]) for s in fresh]
