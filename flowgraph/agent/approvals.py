"""Approval per tool call: a call that needs a person's approval pauses the node, and the run
ends ``waiting_approval`` naming the tool and its input. The conversation so far is kept in the
node's record, so when a person approves (or rejects, with a note the model reads) the resumed
node carries on from the pending call: no earlier model turn is asked again or paid twice.

A tool needs approval when it says so (``Tool(f, approval=True)``) or its role's policy names
it (``Role(approve=["Bash"])``, ``"*"`` for every tool).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowgraph.declare.role import Role
from flowgraph.status import NodeStatus, Paused

__all__ = ["ApprovalNeeded", "Approvals"]


class ApprovalNeeded(Paused):
    """Raised by the tool loop when calls wait for a person; ``state`` is what resumes it."""

    def __init__(self, message: str, state: dict[str, Any]) -> None:
        super().__init__(NodeStatus.WAITING_APPROVAL, message)
        self.state = state


@dataclass
class Approvals:
    """What the loop knows of approvals: the role's policy, and a person's decision on the
    calls a previous run paused at (``pending``: the saved conversation)."""

    role: Role
    pending: Mapping[str, Any] | None = None
    decision: Mapping[str, Any] | None = None
    where: str = "<run dir>"
    decided: dict[str, str | None] = field(default_factory=dict)  # id -> None, or reject note

    def __post_init__(self) -> None:
        if self.pending and self.decision:
            rejected = self.decision.get("kind") == "reject"
            note = str(self.decision.get("text") or "")
            for call_id in self.pending.get("ids", ()):
                self.decided[call_id] = note if rejected else None

    @property
    def resuming(self) -> bool:
        return bool(self.pending and self.decided)

    def needs(self, use: Mapping[str, Any], tool: Any) -> bool:
        policy = set(self.role.approve)
        return bool(getattr(tool, "approval", False)) or "*" in policy or use["name"] in policy

    def waiting(self, uses: list[dict[str, Any]], tools: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The calls of ``uses`` that need approval and have no decision yet."""
        return [
            u for u in uses if u["id"] not in self.decided and self.needs(u, tools.get(u["name"]))
        ]

    def pause(
        self, node: str, waiting: list[dict[str, Any]], messages: list[Any], turn: int
    ) -> ApprovalNeeded:
        calls = "; ".join(f"{u['name']} {json.dumps(u.get('input') or {})}" for u in waiting)
        message = (f"waiting for approval of {calls}; `flowgraph approve {self.where} {node} "
                   f"--note ...` (or reject), then `flowgraph resume {self.where}`")  # fmt: skip
        calls_made = [{"name": u["name"], "input": u.get("input")} for u in waiting]
        state = {"messages": messages, "turn": turn, "ids": [u["id"] for u in waiting],
                 "calls": calls_made}  # fmt: skip
        return ApprovalNeeded(message, state)

    def rejection(self, use: Mapping[str, Any]) -> str | None:
        """The note of a rejected call (``""`` without one), or None if it may run."""
        return self.decided.get(use["id"]) if use["id"] in self.decided else None
