"""``clarion pxgrid run``: the long-running process that alone holds ISE's client certificate, streams sessions
into a sink, and answers a small status/control HTTP API (``GET /status``, ``POST /resync``, ``GET /healthz``).

The API binds to loopback by default: it exposes counters and a resync trigger, nothing secret.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from clarion.sources.pxgrid.consumer import PxGridConsumer
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import HttpSink, SessionSink

log = logging.getLogger(__name__)

#: Sessions per request when the service sends a backfill to the Clarion server: the API takes up to
#: ``max_nodes`` (100,000) rows and 64 MiB per request; 5,000 sessions are about 1.5 MB (decision 0013).
BULK_REQUEST = 5_000


def _handler(consumer: PxGridConsumer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "clarion-pxgrid"

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/status":
                self._reply(200, consumer.status())
            elif self.path == "/healthz":
                status = consumer.status()
                ok = status["state"] in {"streaming", "backfilling"}
                self._reply(200 if ok else 503, {"ok": ok, "state": status["state"]})
            else:
                self._reply(404, {"error": f"no such path {self.path[:100]!r}; try GET /status, POST /resync"})

        def do_POST(self) -> None:
            if self.path == "/resync":
                consumer.resync()
                self._reply(202, {"resync": "requested"})
            else:
                self._reply(404, {"error": f"no such path {self.path[:100]!r}; try POST /resync"})

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("status API: " + format, *args)

    return Handler


class PxGridService:
    """The consumer plus its status API; ``start()``/``stop()`` for embedding and tests, ``run()`` for the CLI."""

    def __init__(self, settings: PxGridSettings, sink: SessionSink) -> None:
        if isinstance(sink, HttpSink) and sink.bulk_batch is None:  # a backfill in big requests, the stream small
            sink.bulk_batch = max(sink.batch, BULK_REQUEST)
        self.settings = settings
        self.consumer = PxGridConsumer(settings, sink)
        self.http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        if settings.status_port is not None:
            self.http = ThreadingHTTPServer((settings.status_host, settings.status_port), _handler(self.consumer))
            self.http.daemon_threads = True

    @property
    def status_url(self) -> str | None:
        if self.http is None:
            return None
        host, port = self.http.server_address[:2]
        return f"http://{host!s}:{port}"

    def _start_http(self) -> None:
        if self.http is not None:
            t = threading.Thread(target=self.http.serve_forever, name="pxgrid-status", daemon=True)
            t.start()
            self._threads.append(t)

    def start(self) -> None:
        """Run in background threads (tests, embedding)."""
        self._start_http()
        t = threading.Thread(target=self.consumer.run, name="pxgrid-consumer", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self.consumer.stop()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        for t in self._threads:
            t.join(timeout)

    def run(self) -> None:
        """Block in the calling thread until SIGTERM/SIGINT."""

        def _signal(signum: int, _frame: FrameType | None) -> None:
            log.info("pxGrid service: signal %d, stopping", signum)
            self.consumer.stop()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _signal)
            signal.signal(signal.SIGINT, _signal)
        self._start_http()
        if self.status_url:
            log.info("pxGrid service status API on %s/status", self.status_url)
        try:
            self.consumer.run()
        finally:
            if self.http is not None:
                self.http.shutdown()
                self.http.server_close()


def run(settings: PxGridSettings, sink: SessionSink) -> None:
    """Run the pxGrid service until stopped by a signal."""
    PxGridService(settings, sink).run()
