"""The pxGrid service's control plane against the fake ISE node: account activation, passwords, TLS trust,
service lookup and host fallback, plus Cisco's own client as a conformance check of the fake."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, expected, get_status, settings_for, streaming, wait_for
from tests.fakes.pxgrid.server import Account
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here


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


def test_bad_client_certificate_gives_a_clear_error_and_retries(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki, client_cert=pki.rogue_cert, client_key=pki.rogue_key), sink)
    wait_for(lambda: svc.consumer.attempts >= 3, what="three attempts")
    status = get_status(svc)
    assert "refused our client certificate" in status["last_error"]
    assert str(pki.rogue_cert) in status["last_error"]
    assert status["state"] in {"backoff", "activating"}
    assert status["counters"]["reconnects"] >= 2
    assert sink.applied == 0
    assert fake.accounts == {}


def test_disabled_account_gives_a_clear_error_and_is_retried_until_enabled(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.add_sessions([session(1, T0)])
    fake.accounts[pki.client_cn] = Account("cert", "DISABLED")
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(lambda: fake.accounts[pki.client_cn].activations >= 2, what="AccountActivate retried")
    status = get_status(svc)
    assert status["state"] == "disabled"
    assert "DISABLED" in status["last_error"]
    assert "an administrator must enable it" in status["last_error"]
    assert sink.applied == 0
    fake.set_account_state(pki.client_cn, "ENABLED")
    wait_for(lambda: len(sink.latest) == 1, what="sessions after the account was enabled")


def test_password_account_is_created_stored_and_used(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], tmp_path: Path
) -> None:
    fake.add_sessions([session(i, T0 + i) for i in range(3)])
    pw_file = tmp_path / "pxgrid.password"
    settings = settings_for(fake, pki, client_cert=None, client_key=None, password_file=pw_file, node_name="clarion-pw")
    sink = MemorySink()
    svc = run_service(settings, sink)
    wait_for(lambda: len(sink.latest) == 3 and svc.consumer.phase == "streaming")
    assert fake.accounts["clarion-pw"].kind == "password"
    assert pw_file.read_text().strip() == fake.accounts["clarion-pw"].password
    assert oct(pw_file.stat().st_mode & 0o777) == "0o600"
    fake.publish_sessions([session(9, T0 + 9)])
    wait_for(lambda: len(sink.latest) == 4)


def test_wrong_password_is_a_clear_401(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], tmp_path: Path
) -> None:
    fake.accounts["clarion-pw"] = Account("password", "ENABLED", "RightPassword123")
    pw_file = tmp_path / "pw"
    pw_file.write_text("WrongPassword456\n")
    settings = settings_for(fake, pki, client_cert=None, client_key=None, password_file=pw_file, node_name="clarion-pw")
    svc = run_service(settings, MemorySink())
    wait_for(lambda: svc.consumer.attempts >= 2)
    error = get_status(svc)["last_error"]
    assert "401 Unauthorized for nodeName 'clarion-pw'" in error


def test_no_pubsub_provider_is_a_clear_error_and_retried(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.withdrawn.add("com.cisco.ise.pubsub")
    svc = run_service(settings_for(fake, pki), MemorySink())
    wait_for(lambda: svc.consumer.attempts >= 2)
    assert get_status(svc)["last_error"] == (
        "pxGrid service com.cisco.ise.pubsub has no provider (ServiceLookup returned none)"
    )
    fake.withdrawn.clear()
    wait_for(streaming(svc))


def test_control_calls_fall_back_to_the_next_host(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.add_sessions([session(1, T0)])
    sink = MemorySink()
    run_service(settings_for(fake, pki, hosts=("127.0.0.2", "127.0.0.1")), sink)  # nothing listens on .2
    wait_for(lambda: len(sink.latest) == 1, what="sessions through the second host")


def test_an_untrusted_ise_certificate_is_a_clear_error(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    svc = run_service(settings_for(fake, pki, ca_cert=pki.rogue_cert), MemorySink())  # not the CA that signed ISE
    wait_for(lambda: svc.consumer.attempts >= 2)
    error = get_status(svc)["last_error"]
    assert "ISE's TLS certificate is not trusted" in error
    assert "set ca_cert to the CA that signed the pxGrid certificate" in error


def test_cisco_pxgrid_util_client_accepts_the_fake(fake: FakePxGrid, pki: Pki) -> None:
    """Conformance: Cisco's own pxgrid-util client (urllib control plane, websockets STOMP) works against the fake,
    which is independent evidence that the fake speaks pxGrid as ISE does."""
    pxgrid_util = pytest.importorskip("pxgrid_util")
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    config = SimpleNamespace(
        hostname=["127.0.0.1"],
        port=fake.port,
        ssl_context=ctx,
        node_name=pki.client_cn,
        password="",
        description="pxgrid-util conformance",
        timeout=5,
    )
    control = pxgrid_util.PXGridControl(config)
    assert control.account_activate()["accountState"] == "ENABLED"
    session_service = control.service_lookup("com.cisco.ise.session")["services"]
    live = next(s for s in session_service if s["nodeName"] == "~ise-mnt-fake1")
    props = live["properties"]
    assert props["restBaseUrl"] == props["restBaseURL"]
    pubsub = control.service_lookup(props["wsPubsubService"])["services"][0]
    ws_secret = control.get_access_secret(pubsub["nodeName"])["secret"]
    rest_secret = control.get_access_secret(live["nodeName"])["secret"]
    assert ws_secret != rest_secret  # one secret per (consumer, peer) pair
    fake.add_sessions([session(1, T0)])
    reply = json.loads(pxgrid_util.query(config, rest_secret, props["restBaseUrl"] + "/getSessions", "{}"))
    assert reply == {"sessions": [session(1, T0)]}

    async def subscribe_and_read() -> Any:
        ws = pxgrid_util.WebSocketStomp(pubsub["properties"]["wsUrl"], pki.client_cn, ws_secret, ctx)
        await ws.connect()
        await ws.stomp_connect(pubsub["nodeName"])
        await ws.stomp_subscribe(props["sessionTopic"])
        for _ in range(250):
            if fake.subscribed() == 1:
                break
            await asyncio.sleep(0.02)
        await asyncio.get_running_loop().run_in_executor(None, fake.publish_sessions, [session(2, T0 + 1)])
        message = await asyncio.wait_for(ws.stomp_read_message(), 10)
        await ws.stomp_disconnect("123")
        await ws.disconnect()
        return json.loads(message)

    assert asyncio.run(subscribe_and_read()) == {"sequence": 0, "sessions": [session(2, T0 + 1)]}
