"""The pxGrid service against the fake ISE node over real TLS, HTTP and WebSocket/STOMP."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.convert import session_from_ise
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki, make_pki
from tests.fakes.pxgrid.data import DEFAULT_SGTS, session

pytestmark = pytest.mark.integration

T0 = 1_714_558_530_000  # 2024-05-01T10:15:30Z


def wait_for(pred: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake(pki: Pki) -> Iterator[FakePxGrid]:
    server = FakePxGrid(pki, auto_approve=True).start()
    yield server
    server.stop()


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


@pytest.fixture
def run_service() -> Iterator[Callable[[PxGridSettings, MemorySink], PxGridService]]:
    started: list[PxGridService] = []

    def start(settings: PxGridSettings, sink: MemorySink) -> PxGridService:
        svc = PxGridService(settings, sink)
        svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


def get_status(svc: PxGridService) -> dict[str, Any]:
    with urllib.request.urlopen(f"{svc.status_url}/status", timeout=5) as resp:  # noqa: S310 - loopback test URL
        result: dict[str, Any] = json.loads(resp.read())
        return result


def expected(fake: FakePxGrid) -> dict[str, Session]:
    """What the sink must hold: ISE's newest session per MAC, converted independently of the consumer."""
    return {
        s.mac: s
        for s in (session_from_ise(raw, DEFAULT_SGTS) for raw in fake.sessions.values())
        if True  # every fake session converts
    }


def streaming(svc: PxGridService) -> Callable[[], bool]:
    return lambda: svc.consumer.phase == "streaming"


def test_pending_account_is_polled_until_enabled_then_bulk_download(
    pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake = FakePxGrid(pki, auto_approve=False).start()
    try:
        fake.add_sessions([session(i, T0 + i) for i in range(250)])
        sink = MemorySink()
        svc = run_service(settings_for(fake, pki), sink)
        wait_for(lambda: fake.accounts.get(pki.client_cn) is not None and fake.accounts[pki.client_cn].activations >= 3)
        status = get_status(svc)
        assert status["state"] == "pending"
        assert status["account_state"] == "PENDING"
        assert "PENDING" in status["last_error"]
        assert sink.applied == 0
        assert fake.accounts[pki.client_cn].description == "Clarion identity consumer"
        fake.set_account_state(pki.client_cn, "ENABLED")
        wait_for(lambda: len(sink.latest) == 250, what="bulk download")
        assert sink.latest == expected(fake)
        one = sink.latest["aa:bb:cc:00:00:07"]
        assert one == Session(
            mac="aa:bb:cc:00:00:07",
            ips=("10.20.0.7",),
            username="user7",
            sgt=4,
            sgt_name="Employees",
            switch_id="10.10.0.2",
            interface="GigabitEthernet1/0/8",
            endpoint_profile="Windows10-Workstation",
            state="STARTED",
            timestamp_ms=T0 + 7,
            source="ise",
        )
        wait_for(streaming(svc))
        status = get_status(svc)
        assert status["account_state"] == "ENABLED"
        assert status["counters"]["merged"] == 250
        assert status["pubsub_node"] == "~ise-pubsub-fake1"
        assert status["topics"]["clarion-sessions"] == "/topic/com.cisco.ise.session"
        # the bulk call reached the live MnT node, falling back past the dead one when ISE listed it first
        assert ("/pxgrid/mnt/sd/getSessions", pki.client_cn) in fake.calls
    finally:
        fake.stop()
