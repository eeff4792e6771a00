"""What ``flowgraph output DIR NODE`` prints: a node's output, or its transcript, read from the
run directory only (never taking the run over)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowgraph.errors import ConfigError
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
    if record.output_file:
        return json.loads((run_dir / record.output_file).read_text(encoding="utf-8"))
    return record.output


def transcript_of(run_dir: Path, node: str) -> dict[str, Any]:
    """The archived conversation of a role node: ``{"node", "requests", "messages"}``."""
    _known(run_dir, node)
    file = run_dir / "transcripts" / f"{node}.json"
    if not file.resolve().is_relative_to(run_dir.resolve()) or not file.is_file():
        raise ConfigError(
            f"node {node!r} has no transcript in {run_dir}: only role nodes that made a model "
            f"call have one; `flowgraph output {run_dir} {node}` shows its output"
        )
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def render_transcript(archive: dict[str, Any]) -> str:
    """The conversation for a person: who said what, tool calls and results in one line each."""
    lines: list[str] = []
    for message in archive.get("messages", []):
        role = message.get("role", "?")
        content = message.get("content", "")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            lines.append(f"[{role}] {_block_text(block)}")
    return "\n".join(lines)


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return str(block)
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"tool call {block.get('name')}({json.dumps(block.get('input', {}))})"
    if kind == "tool_result":
        content = block.get("content", "")
        text = content if isinstance(content, str) else json.dumps(content)
        return f"tool result: {text}"
    return f"({kind}) {json.dumps(block)[:200]}"
