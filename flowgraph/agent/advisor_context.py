"""Advisor context: what an emulated consult shows the advisor.

Each consult re-reads the context it is given at the advisor's input price, so a long
conversation makes every later consult dearer than the one before ("context bloat"). The
policy (``Advisor.context``) bounds it:

- ``full``: the whole transcript (the input grows with the conversation);
- ``last_turns``: the instructions, the task and the last ``context_turns`` turns (flat);
- ``summary``: the same, plus a summary of the turns in between, written by a cheap model and
  kept up to date incrementally (only turns not yet summarized are read again).

``max_input_tokens`` then cuts the middle of whatever is left to fit (~4 characters a token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowgraph.agent.blocks import as_text
from flowgraph.declare.advisor import Advisor

__all__ = ["ContextBuilder", "recent"]

SUMMARY_SYSTEM = (
    "Summarize the work so far of a model doing a task, for an advisor who will read it: the "
    "approach taken, what was tried and failed, facts found, and open questions. At most 200 "
    "words; no preamble."
)
CHARS_PER_TOKEN = 4

# (system, text, max_tokens) -> the summary text; the call is billed as advisor spend.
Summarize = Callable[[str, str, int], Awaitable[str]]


def recent(messages: Sequence[Mapping[str, Any]], turns: int) -> tuple[int, int]:
    """``(start, end)`` of the messages between the task and the last ``turns`` turns: the
    part a bounded policy leaves out (or summarizes). A turn is an assistant message and the
    user message that answers it."""
    keep = 2 * turns
    start = 1  # messages[0] is the task
    end = max(start, len(messages) - keep)
    # Start the kept part on an assistant message, so a tool result never loses its call.
    while end < len(messages) and messages[end].get("role") != "assistant":
        end += 1
    return start, min(end, len(messages))


@dataclass
class ContextBuilder:
    """Builds one node's advisor input under its policy; holds the running summary."""

    advisor: Advisor
    summarize: Summarize | None = None
    _summary: str = ""
    _summarized: int = 1  # messages[1:_summarized] are in the summary

    async def build(self, system: str, messages: Sequence[Mapping[str, Any]]) -> str:
        """The transcript text the advisor reads."""
        policy = self.advisor.context
        if policy == "full" or len(messages) <= 1:
            text = as_text(system, messages)
        else:
            start, end = recent(messages, self.advisor.context_turns)
            head = as_text(system, messages[:1])
            tail = as_text("", messages[end:]).split("\n", 2)[-1] if end < len(messages) else ""
            middle = ""
            if end > start:
                if policy == "summary" and self.summarize is not None:
                    summary = await self._summary_of(messages, end)
                    middle = f"--- Summary of turns not shown ---\n{summary}"
                else:
                    middle = f"--- ({end - start} earlier messages not shown) ---"
            text = "\n".join(part for part in (head, middle, tail) if part)
        return self._capped(text)

    async def _summary_of(self, messages: Sequence[Mapping[str, Any]], end: int) -> str:
        if end > self._summarized and self.summarize is not None:
            new = as_text("", messages[self._summarized : end]).split("\n", 2)[-1]
            earlier = f"Summary so far:\n{self._summary}\n\n" if self._summary else ""
            self._summary = await self.summarize(SUMMARY_SYSTEM, f"{earlier}New work:\n{new}",
                                                 400)  # fmt: skip
            self._summarized = end
        return self._summary

    def _capped(self, text: str) -> str:
        cap = self.advisor.max_input_tokens
        if cap is None or len(text) <= cap * CHARS_PER_TOKEN:
            return text
        room = cap * CHARS_PER_TOKEN - 60
        head, tail = room // 3, room - room // 3
        cut = len(text) - head - tail
        return (
            f"{text[:head]}\n[... {cut} characters cut to fit the advisor's input cap ...]\n"
            + (text[-tail:])
        )
