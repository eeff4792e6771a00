"""``Consult``: one advisor consult (or a failed try at one), as a node's record keeps it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Consult"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Consult:
    """One consult (or a failed try at one), as the ledger records it.

    Attributes:
        turn: the executor's turn.
        mode: ``native``, ``emulated`` or ``triggered`` (flowgraph asked, not the executor).
        trigger: ``executor``, ``repeated_failure``, ``check_failure`` or ``before_done``.
        outcome: ``ok`` or ``error``.
        model: the advisor model that answered.
        advice: what it said (``[redacted]`` for an encrypted answer).
        input_tokens: the advisor's input.
        output_tokens: the advisor's output.
        cost_usd: at the advisor's prices; None when it has no price.
        reason: why a trigger fired.
        error: the error code or message of a failed consult.
    """

    turn: int
    mode: str
    trigger: str
    outcome: str
    model: str
    advice: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    reason: str = ""
    error: Any = None

    @property
    def ok(self) -> bool:
        """Whether advice came back (only these use up ``max_uses``)."""
        return self.outcome == "ok"

    def to_record(self) -> dict[str, Any]:
        """The ledger's form: a JSON object without the empty optional fields."""
        record = asdict(self)
        if not self.reason:
            del record["reason"]
        if not self.error:
            del record["error"]
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Consult:
        """Read a consult back from the ledger (unknown keys are ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})
