"""The emulator's command line (``python -m flowgraph.testing.emulator``) and the script
file's ``by_turn`` form."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flowgraph.testing._emulator_replies import Reply, to_reply

__all__ = ["by_turn", "main"]


def by_turn(script: Any) -> Any:
    """``{"by_turn": [r1, r2, ...]}``: reply k to the k-th request of each conversation (the
    last one repeats), so many multi-turn conversations can share one script file."""
    if not (isinstance(script, Mapping) and "by_turn" in script):
        return script
    replies = [to_reply(r) for r in script["by_turn"]]

    def pick(body: dict[str, Any]) -> Reply:
        turn = sum(1 for m in body.get("messages", ()) if m.get("role") == "assistant")
        return replies[min(turn, len(replies) - 1)]

    return pick


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator from the command line until interrupted."""
    parser = argparse.ArgumentParser(description="Messages-API emulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--script", type=Path, help="JSON script file (see module docstring)")
    parser.add_argument("--latency", type=float, default=None, help="seconds per response")
    parser.add_argument("--api-key", default=None, help="accept only this key")
    parser.add_argument(
        "--no-advisor-tool", action="store_true", help="answer the advisor tool with a 400"
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"port": args.port, "api_key": args.api_key}
    if args.no_advisor_tool:
        options["advisor_tool"] = False
    if args.latency is not None:
        options["latency"] = args.latency
    from flowgraph.testing.emulator import Emulator

    emu = Emulator.from_file(args.script, **options) if args.script else Emulator(**options)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emu:
        print(f"flowgraph emulator listening on {emu.base_url}", flush=True)
        # Wake up now and then: a signal handler runs only when the main thread does.
        while not stop.wait(0.2):
            pass
