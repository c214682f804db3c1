"""Helpers the pxGrid integration tests share: fast settings for the fake, waiting, status over HTTP, and small
stand-ins for the Clarion server and for a failing sink."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clarion.sources.model import Session
from clarion.sources.pxgrid.convert import session_from_ise
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import DEFAULT_SGTS
from tests.fakes.pxgrid.server import FakePxGrid

T0 = 1_714_558_530_000  # 2024-05-01T10:15:30Z


def wait_for(pred: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settings_for(fake: FakePxGrid, pki: Pki, **kw: Any) -> PxGridSettings:
    base = PxGridSettings(
        node_name=pki.client_cn,
        hosts=("127.0.0.1",),
        port=fake.port,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
        ca_cert=pki.ca_cert,
        pending_retry_s=0.2,
        disabled_retry_s=0.3,
        backoff_base_s=0.05,
        backoff_cap_s=0.4,
        http_timeout_s=5,
        ping_interval_s=1,
        read_timeout_s=10,
        receipt_timeout_s=2,
        recovery_margin_s=2,
        status_port=0,
    )
    return replace(base, **kw).validate()


def get_status(svc: PxGridService) -> dict[str, Any]:
    with urllib.request.urlopen(f"{svc.status_url}/status", timeout=5) as resp:  # noqa: S310 - loopback test URL
        result: dict[str, Any] = json.loads(resp.read())
        return result


def expected(fake: FakePxGrid) -> dict[str, Session]:
    """What the sink must hold: ISE's newest session per MAC, converted independently of the consumer."""
    return {s.mac: s for s in (session_from_ise(raw, DEFAULT_SGTS) for raw in fake.sessions.values())}


def streaming(svc: PxGridService) -> Callable[[], bool]:
    return lambda: svc.consumer.phase == "streaming"


def expected_with(fake: FakePxGrid, extra_sgts: dict[str, int]) -> dict[str, Session]:
    sgts = {**DEFAULT_SGTS, **extra_sgts}
    return {s.mac: s for s in (session_from_ise(raw, sgts) for raw in fake.sessions.values())}


class IdentityRecorder(ThreadingHTTPServer):
    """Stands in for the Clarion server's /api/v1/identity (the lead's endpoint) to see what the service POSTs."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), IdentityHandler)
        self.sessions: list[dict[str, Any]] = []
        self.security_groups: list[dict[str, Any]] = []
        self.auth: set[str] = set()


class IdentityHandler(BaseHTTPRequestHandler):
    server: IdentityRecorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/v1/identity":
            self.server.sessions.extend(body.get("sessions", []))
            self.server.security_groups.extend(body.get("security_groups", []))
            self.server.auth.add(self.headers.get("Authorization", ""))
        self.send_response(202 if self.path == "/api/v1/identity" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FlakySink(MemorySink):
    """Fails one batch, like a Clarion server that is briefly down."""

    def __init__(self, fail_on_call: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on_call = fail_on_call

    def apply(self, sessions: list[Session]) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise ConnectionError("server unavailable")
        super().apply(sessions)
