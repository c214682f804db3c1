"""The HTTP sink against a real loopback HTTP server: body shape, auth header, retries, clear refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.errors import SinkError
from clarion.sources.pxgrid.sink import HttpSink, session_to_json


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.replies: list[int] = []  # status codes to answer, in order; then 202


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        self.server.auth.append(self.headers.get("Authorization", ""))
        assert self.path == "/api/v1/identity"
        code = self.server.replies.pop(0) if self.server.replies else 202
        data = json.dumps({"detail": "bad body"} if code == 422 else {"accepted": True}).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


S1 = Session(
    mac="aa:bb:cc:00:00:01",
    ips=("10.0.0.1",),
    username="alice",
    sgt=4,
    sgt_name="Employees",
    timestamp_ms=1,
    ad_groups=("Eng",),
)


def url(srv: Recorder) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_posts_sessions_with_model_field_names_in_batches(server: Recorder) -> None:
    sink = HttpSink(url(server), "tok-123", batch=2)
    sink.apply([S1, S1, S1])
    assert [len(b["sessions"]) for b in server.bodies] == [2, 1]
    assert server.auth == ["Bearer tok-123", "Bearer tok-123"]
    assert server.bodies[0]["sessions"][0] == {
        "mac": "aa:bb:cc:00:00:01",
        "ips": ["10.0.0.1"],
        "username": "alice",
        "sgt": 4,
        "sgt_name": "Employees",
        "switch_id": None,
        "interface": None,
        "vlan": None,
        "endpoint_profile": None,
        "state": "STARTED",
        "timestamp_ms": 1,
        "ad_groups": ["Eng"],
        "source": "ise",
    }
    assert session_to_json(S1) == server.bodies[0]["sessions"][0]


def test_retries_5xx_then_succeeds(server: Recorder) -> None:
    server.replies = [503, 500]
    HttpSink(url(server), "t", backoff_s=0.01).apply([S1])
    assert len(server.bodies) == 3


def test_4xx_is_a_clear_error_at_once(server: Recorder) -> None:
    server.replies = [422]
    with pytest.raises(SinkError, match="refused the sessions: HTTP 422"):
        HttpSink(url(server), "t", backoff_s=0.01).apply([S1])
    assert len(server.bodies) == 1


def test_gives_up_after_attempts_when_unreachable() -> None:
    with pytest.raises(SinkError, match="gave up after 2 attempts"):
        HttpSink("http://127.0.0.1:1", "t", attempts=2, backoff_s=0.01).apply([S1])
    with pytest.raises(ValueError, match="base URL"):
        HttpSink("clarion:8000", "t")
