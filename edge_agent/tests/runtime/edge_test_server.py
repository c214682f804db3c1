"""A real HTTP server (stdlib, in a thread) with the ingest contract of Clarion's ``POST /api/v1/graphs``.

clarion_edge must not import the server package, so the agent's tests talk to this stand-in:
exactly-once by (agent_id, seq, digest), 409 on a conflicting replay, 422 with a field path on an
invalid body, 401/403 on auth. It can stop and restart on the same port to play an outage.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from clarion_edge import wire


@dataclass
class Ledger:
    """What the server applied: the oracle the tests compare against."""

    applied: dict[tuple[str, int], str] = field(default_factory=dict)  # (agent, seq) -> digest
    graphs: list[wire.EdgeGraph] = field(default_factory=list)
    duplicates: int = 0
    conflicts: int = 0
    invalid: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def totals(self) -> dict[str, int]:
        """Sum of FLOWS_TO counters over every applied batch."""
        out = {"bytes": 0, "packets": 0, "flows": 0, "edges": 0}
        for g in self.graphs:
            for e in g.edges:
                if isinstance(e, wire.FlowsTo):
                    out["bytes"] += e.bytes
                    out["packets"] += e.packets
                    out["flows"] += e.flows
                    out["edges"] += 1
        return out


class GraphServer:
    """Start with :meth:`start`; ``fail_next`` queues status codes to answer before applying."""

    def __init__(self, tokens: dict[str, str] | None = None, port: int = 0, max_body: int = 64 << 20) -> None:
        self.tokens = tokens if tokens is not None else {"tok-edge-1": "edge-1"}
        self.ledger = Ledger()
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        self.answer_delay = 0.0  # seconds between applying a batch and answering (to kill a client mid-request)
        self.max_body = max_body
        self.port = port
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GraphServer:
        handler = _make_handler(self)
        self._httpd = _Httpd(("127.0.0.1", self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    def handle(self, auth: str | None, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.ledger.requests += 1
            if self.fail_next:
                status, headers = self.fail_next.pop(0)
                return status, {"detail": {"error": f"injected {status}"}}, headers
            if not auth or not auth.startswith("Bearer "):
                return 401, {"detail": {"error": "missing bearer token"}}, {}
            agent = self.tokens.get(auth.removeprefix("Bearer "))
            if agent is None:
                return 401, {"detail": {"error": "unknown token"}}, {}
            if len(body) > self.max_body:
                return 413, {"detail": {"error": "body too large"}}, {}
            try:
                graph = wire.decode(body)
            except wire.WireError as exc:
                self.ledger.invalid += 1
                return 422, {"detail": {"error": exc.detail, "path": exc.path}}, {}
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self.ledger.invalid += 1
                return 422, {"detail": {"error": str(exc), "path": "$"}}, {}
            if graph.agent_id != agent:
                return 403, {"detail": {"error": f"token may write only as {agent}"}}, {}
            if graph.digest is None:
                return 422, {"detail": {"error": "digest is required", "path": "$.digest"}}, {}
            key = (graph.agent_id, graph.seq)
            known = self.ledger.applied.get(key)
            answer = {
                "agent_id": graph.agent_id,
                "seq": graph.seq,
                "nodes": len(graph.nodes),
                "edges": len(graph.edges),
            }
            if known == graph.digest:
                self.ledger.duplicates += 1
                return 200, {"applied": False, "duplicate": True, **answer}, {}
            if known is not None:
                self.ledger.conflicts += 1
                return 409, {"detail": {"error": f"seq {graph.seq} was applied with another digest"}}, {}
            self.ledger.applied[key] = graph.digest
            self.ledger.graphs.append(graph)
            return 200, {"applied": True, "duplicate": False, **answer}, {}


class _Httpd(ThreadingHTTPServer):
    """Closes kept-alive connections on stop, so a stopped server is really gone for clients."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open_sockets: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        for sock in list(self.open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _make_handler(server: GraphServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            server.ledger.statuses[status] += 1

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, {"status": "ok"}, {})
            else:
                self._answer(404, {"detail": "not found"}, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/api/v1/graphs":
                self._answer(404, {"detail": "not found"}, {})
                return
            answer = server.handle(self.headers.get("Authorization"), body)
            if server.answer_delay:
                time.sleep(server.answer_delay)
            self._answer(*answer)

    return Handler
