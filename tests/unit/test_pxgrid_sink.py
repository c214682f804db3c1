"""The HTTP sink against a real loopback HTTP server: body shape, auth header, retries, clear refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clarion.sources.model import SecurityGroup, Session, Sgacl
from clarion.sources.pxgrid.errors import SinkError
from clarion.sources.pxgrid.sink import HttpSink, session_to_json


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.replies: list[int] = []  # status codes to answer, in order; then 202
        self.poison: set[str] = set()  # MACs the server refuses with 422


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        self.server.auth.append(self.headers.get("Authorization", ""))
        assert self.path == "/api/v1/identity"
        code = self.server.replies.pop(0) if self.server.replies else 202
        if any(row.get("mac") in self.server.poison for row in body.get("sessions", [])):
            code = 422
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


def test_auth_refusal_is_a_clear_error_at_once(server: Recorder) -> None:
    server.replies = [403]
    with pytest.raises(SinkError, match="refused the request: HTTP 403"):
        HttpSink(url(server), "t", backoff_s=0.01).apply([S1])
    assert len(server.bodies) == 1


def test_a_session_the_server_refuses_is_isolated_and_dropped(server: Recorder) -> None:
    batch = [replace(S1, mac=f"aa:bb:cc:00:00:{i:02x}") for i in range(8)]
    server.poison = {"aa:bb:cc:00:00:05"}
    sink = HttpSink(url(server), "t", backoff_s=0.01)
    sink.apply(batch)
    accepted = [
        row["mac"]
        for b in server.bodies
        if not any(r["mac"] in server.poison for r in b["sessions"])
        for row in b["sessions"]
    ]
    assert sorted(accepted) == sorted(s.mac for s in batch if s.mac != "aa:bb:cc:00:00:05")
    assert sink.rejected == 1
    assert len(server.bodies) == 7  # 8 → 4+4 → (2+2) → (1+1): log2 bisection, not one request per session


def test_trustsec_objects_are_posted_with_model_field_names(server: Recorder) -> None:
    sink = HttpSink(url(server), "t")
    sink.apply_security_groups([SecurityGroup(value=4, name="Employees", ise_id="sg-4")], [])
    sink.apply_sgacls([Sgacl(name="Web", aces="permit tcp dst eq 443", ip_version="IPV4")], ["Old"])
    assert server.bodies == [
        {"security_groups": [{"value": 4, "name": "Employees", "ise_id": "sg-4", "description": None}]},
        {
            "sgacls": [
                {
                    "name": "Web",
                    "aces": "permit tcp dst eq 443",
                    "ise_id": None,
                    "ip_version": "IPV4",
                    "description": None,
                }
            ]
        },
        {"deleted_sgacls": ["Old"]},
    ]


def test_gives_up_after_attempts_when_unreachable() -> None:
    with pytest.raises(SinkError, match="gave up after 2 attempts"):
        HttpSink("http://127.0.0.1:1", "t", attempts=2, backoff_s=0.01).apply([S1])
    with pytest.raises(ValueError, match="base URL"):
        HttpSink("clarion:8000", "t")
