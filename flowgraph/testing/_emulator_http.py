"""The emulator's wire: an HTTP/1.1 server that asks a planner for each response and writes it
as JSON or as an SSE stream, with the faults a plan asks for (a cut, a malformed body)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from flowgraph.testing._emulator_core import Plan, sse_events, stub_start

__all__ = ["Planner", "Server", "serve"]


class Planner(Protocol):
    """What decides each response (the ``Emulator``)."""

    def plan(self, path: str, raw: bytes, headers: Mapping[str, str]) -> Plan: ...

    def done(self, plan: Plan) -> None:
        """The response to ``plan`` was written (or cut): the request is no longer in flight."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 refuses bursts of parallel clients; 200+ must connect at once.
    request_queue_size = 1024
    emulator: Planner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a cancelled run, an injected drop) is not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging; ``emu.requests`` is the log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        plan = self.server.emulator.plan(path, raw, dict(self.headers.items()))
        try:
            if plan.delay > 0:
                time.sleep(plan.delay)
            if plan.stream:
                self._write_stream(plan)
            else:
                self._write_json(plan)
        finally:
            self.server.emulator.done(plan)

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("request-id", "req_emu")
        for name, value in headers.items():
            self.send_header(name, value)

    def _write_json(self, plan: Plan) -> None:
        data = json.dumps(plan.body).encode()
        if plan.fault == "malformed":
            data = data[: len(data) // 2]
        self._start(plan.status, {**plan.headers, "content-type": "application/json"})
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if plan.fault == "drop":
            self.wfile.write(data[: len(data) // 2])
            self._cut()
            return
        self.wfile.write(data)

    def _write_stream(self, plan: Plan) -> None:
        self._start(200, {"content-type": "text/event-stream", "cache-control": "no-cache"})
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event, data in self._events(plan):
            if event == "__cut__":
                self._cut()
                return
            self._chunk(f"event: {event}\ndata: {data}\n\n".encode())
        self.wfile.write(b"0\r\n\r\n")

    def _events(self, plan: Plan) -> Iterator[tuple[str, str]]:
        if plan.message is not None:
            for event, data in sse_events(plan.message):
                yield event, json.dumps(data)
            return
        # A stream fault: start like a real message, then fail.
        yield "message_start", json.dumps({"type": "message_start", "message": stub_start()})
        if plan.fault == "drop":
            yield "__cut__", ""
        elif plan.fault == "malformed":
            yield "content_block_start", '{"type": "content_block_start", "index": 0, "conte'
        else:
            yield "error", json.dumps(plan.body)

    def _chunk(self, payload: bytes) -> None:
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

    def _cut(self) -> None:
        """Drop the connection abruptly, as a failing proxy or server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def serve(planner: Planner, port: int) -> Server:
    """A server on 127.0.0.1:``port`` (0: any free port) answering from ``planner``."""
    server = Server(("127.0.0.1", port), _Handler)
    server.emulator = planner
    return server
