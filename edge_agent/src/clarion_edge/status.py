"""A small read-only HTTP status endpoint (JSON) for operators and tests: ``GET /status``, ``GET /healthz``.

``/healthz`` answers 503 when a stage thread has died, so a supervisor (Docker HEALTHCHECK) restarts the agent.

stdlib only, in its own thread; bind it to loopback unless a monitoring system needs it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clarion_edge.config import parse_hostport

log = logging.getLogger(__name__)


class StatusServer:
    def __init__(
        self, address: str, snapshot: Callable[[], dict[str, Any]], dead: Callable[[], list[str]] = list
    ) -> None:
        host, port = parse_hostport(address, what="status_listen")
        self._snapshot = snapshot
        self._dead = dead
        handler = _handler(self)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="clarion-edge-status", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("status endpoint on http://%s:%d/status", *self._httpd.server_address[:2])

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def render(self, path: str) -> tuple[int, bytes]:
        if path in ("/status", "/"):
            return 200, json.dumps(self._snapshot(), sort_keys=True, default=str).encode()
        if path == "/healthz":
            dead = self._dead()
            if dead:
                return 503, json.dumps({"status": "failing", "dead_threads": dead}).encode()
            return 200, b'{"status": "ok"}'
        return 404, b'{"detail": "not found: try /status or /healthz"}'


def _handler(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            status, body = server.render(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
