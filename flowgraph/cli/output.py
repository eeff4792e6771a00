"""What ``flowgraph output DIR NODE`` prints: a node's output, or its transcript, read from the
run directory only (never taking the run over)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowgraph.agent.loop import steering_blocks
from flowgraph.agent.turns import request_of
from flowgraph.errors import ConfigError
from flowgraph.ledger.reader import output_file, steps_of
from flowgraph.ledger.store import Ledger, LedgerDoc

__all__ = ["node_output", "render_transcript", "transcript_of"]


def _known(run_dir: Path, node: str) -> LedgerDoc:
    """The run's ledger (read only), with ``node`` checked to be one of its nodes: a name from
    the command line never becomes a path of its own."""
    doc = Ledger.read(run_dir)
    if node not in doc.nodes:
        names = ", ".join(doc.nodes) or "none yet"
        raise ConfigError(f"run {run_dir} has no node {node!r}; its nodes are: {names}")
    return doc


def node_output(run_dir: Path, node: str) -> Any:
    """The stored output of ``node`` (read back from its file when it was large)."""
    record = _known(run_dir, node).nodes[node]
    if record.status != "passed" and record.output is None and not record.output_file:
        raise ConfigError(
            f"node {node!r} has no output: it is {record.status}; see `flowgraph status {run_dir}`"
        )
    if record.output_file:  # only ever a file under the run's outputs/
        return json.loads(output_file(run_dir, node, record).read_text(encoding="utf-8"))
    return record.output


def transcript_of(run_dir: Path, node: str) -> dict[str, Any]:
    """The conversation of a role node's last attempt, ``{"node", "attempt", "requests",
    "messages"}``, rebuilt from the steps the journal holds for it (the task, then each step as
    it happened: a killed run has its transcript too)."""
    _known(run_dir, node)
    steps = steps_of(run_dir, node)
    if not steps:
        raise ConfigError(
            f"node {node!r} has no transcript in {run_dir}: only role nodes that made a model "
            f"call have one; `flowgraph output {run_dir} {node}` shows its output"
        )
    attempt: int | None = None
    messages: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    for step in steps:
        kind = step["k"]
        if kind == "task":  # a new attempt: the conversation starts again
            attempt, messages, requests = step["attempt"], [], []
            messages.append({"role": "user", "content": step["content"]})
        elif kind == "a":
            messages.append({"role": "assistant", "content": step["content"]})
            requests.append(request_of(step))
        elif kind == "r":
            _user_blocks(messages, [step["block"]])
        elif kind == "s":
            _user_blocks(messages, steering_blocks(step["texts"]))
        else:  # "u": feedback on an answer, or an advisor's review
            messages.append({"role": "user", "content": step["content"]})
    return {"node": node, "attempt": attempt, "requests": requests, "messages": messages}


def _user_blocks(messages: list[dict[str, Any]], blocks: list[Any]) -> None:
    """Add ``blocks`` to the user message that ends the conversation, or start one."""
    last = messages[-1] if messages else None
    if last is None or last["role"] != "user":
        messages.append({"role": "user", "content": list(blocks)})
        return
    content = last["content"]
    before = [{"type": "text", "text": content}] if isinstance(content, str) else content
    last["content"] = [*before, *blocks]


def render_transcript(archive: dict[str, Any]) -> str:
    """The conversation for a person: who said what, and each tool call and result cut to
    ``SHOWN`` characters (``--json`` has them whole)."""
    lines: list[str] = []
    for message in archive.get("messages", []):
        role = message.get("role", "?")
        content = message.get("content", "")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            lines.append(f"[{role}] {_block_text(block)}")
    return "\n".join(lines)


SHOWN = 500  # characters of a tool call's input or a tool's result


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return _cut(str(block))
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"tool call {block.get('name')}({_cut(json.dumps(block.get('input', {})))})"
    if kind == "tool_result":
        content = block.get("content", "")
        text = content if isinstance(content, str) else json.dumps(content)
        return f"tool result: {_cut(text)}"
    return f"({kind}) {_cut(json.dumps(block))}"


def _cut(text: str) -> str:
    if len(text) <= SHOWN:
        return text
    return f"{text[:SHOWN]}… ({len(text) - SHOWN:,} more characters: --json shows them all)"
