"""The pxGrid service against the fake ISE node over real TLS, HTTP and WebSocket/STOMP."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import HttpSink, MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki, make_pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import (
    T0,
    FlakySink,
    IdentityRecorder,
    expected,
    expected_with,
    get_status,
    settings_for,
    streaming,
    wait_for,
)
from tests.fakes.pxgrid.server import Account

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake(pki: Pki) -> Iterator[FakePxGrid]:
    server = FakePxGrid(pki, auto_approve=True).start()
    yield server
    server.stop()


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


def test_streamed_events_reach_the_sink_with_sgt_updates_and_disconnects(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(streaming(svc))
    wait_for(lambda: fake.subscribed() == 1)
    assert fake.publish_sessions([session(i, T0 + 1000 + i) for i in range(5)]) == 1
    fake.publish_security_group("CREATE", {"id": "sg-42", "name": "Lab_Devices", "description": "", "tag": 42})
    fake.publish_sessions([session(100, T0 + 2000, sgt="Lab_Devices", offset_minutes=-240)])
    fake.publish_sessions([session(3, T0 + 3000, state="DISCONNECTED")])
    wait_for(lambda: sink.applied == 7, what="7 streamed sessions")
    lab = sink.latest["aa:bb:cc:00:00:64"]
    assert (lab.sgt, lab.sgt_name, lab.timestamp_ms) == (42, "Lab_Devices", T0 + 2000)  # -04:00 offset respected
    gone = sink.latest["aa:bb:cc:00:00:03"]
    assert (gone.state, gone.ips, gone.timestamp_ms) == ("DISCONNECTED", ("10.20.0.3",), T0 + 3000)
    assert sink.latest == expected_with(fake, {"Lab_Devices": 42})
    assert sink.security_groups[42].name == "Lab_Devices"
    assert sink.sgacls["Permit_Web"].aces == "permit tcp dst eq 443\npermit tcp dst eq 80"
    counters = get_status(svc)["counters"]
    assert counters["received"] == 7
    assert counters["merged"] == 7
    assert counters["malformed"] == 0
    assert counters["security_group_updates"] == 1
    assert fake.connect_headers == [{"accept-version": "1.2", "host": "~ise-pubsub-fake1"}]
    sub_ids = sorted(fake.subscribers[0].subs)
    assert sub_ids == ["clarion-groups", "clarion-sessions", "clarion-sgacl", "clarion-sgt"]


def test_dropping_the_websocket_mid_stream_loses_no_session(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.add_sessions([session(i, T0 + i) for i in range(50)])
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(lambda: len(sink.latest) == 50 and svc.consumer.phase == "streaming")
    reached = 0
    for batch in range(60):  # 180 updates over 120 endpoints, several per message as ISE batches them
        ts = T0 + 10_000 + batch * 10
        if batch == 20:
            fake.ws_available = False  # the pubsub node goes away for a while...
            assert fake.drop_connections(abrupt=True) == 1
        if batch == 40:
            fake.ws_available = True  # ...and comes back; the client must reconnect and backfill
        reached += fake.publish_sessions([session((batch * 3 + k) % 120, ts + k) for k in range(3)])
        time.sleep(0.01)
    assert reached < 60, "some messages must have been published while nobody was subscribed"
    wait_for(lambda: sink.latest == expected(fake), what="the sink to hold every session ISE has")
    counters = get_status(svc)["counters"]
    assert counters["reconnects"] >= 1
    assert counters["backfills"] >= 2  # the initial download and at least one recovery
    assert any(path.endswith("/getSessionsForRecovery") for path, _ in fake.calls)
    assert fake.ws_connects >= 2


def test_malformed_messages_are_counted_and_skipped(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(streaming(svc))
    wait_for(lambda: fake.subscribed() == 1)
    topic = "/topic/com.cisco.ise.session"
    fake.publish_raw(topic, b"{not json")
    fake.publish_raw(topic, b'{"notSessions": []}')
    bad_mac = session(1, T0)
    bad_mac["macAddress"] = bad_mac["callingStationId"] = "not-a-mac"
    bad_ip = session(2, T0)
    bad_ip["ipAddresses"] = ["10.0.0.999"]
    fake.publish_sessions([bad_mac, session(5, T0 + 5), bad_ip])
    fake.publish_sessions([session(6, T0 + 6)])
    wait_for(lambda: sink.applied == 2, what="the two good sessions")
    assert set(sink.latest) == {"aa:bb:cc:00:00:05", "aa:bb:cc:00:00:06"}
    counters = get_status(svc)["counters"]
    assert counters["malformed"] == 4
    assert counters["reconnects"] == 0  # the stream never stopped
    assert fake.ws_connects == 1


@pytest.mark.parametrize("loss", ["reset", "jump"])
def test_sequence_reset_or_jump_triggers_a_backfill(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], loss: str
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(streaming(svc))
    wait_for(lambda: fake.subscribed() == 1)
    for i in range(3):
        fake.publish_sessions([session(i, T0 + 100 + i)])
    wait_for(lambda: sink.applied == 3)
    backfills = get_status(svc)["counters"]["backfills"]
    # a message ISE lost: in the directory, never delivered on the topic
    fake.add_sessions([session(77, T0 + 150)])
    if loss == "reset":
        fake.reset_sequence()  # the publisher restarted
    else:
        fake.jump_sequence(4)
    fake.publish_sessions([session(8, T0 + 200)])
    wait_for(lambda: "aa:bb:cc:00:00:4d" in sink.latest, what="the lost session recovered by backfill")
    counters = get_status(svc)["counters"]
    assert counters["gaps"] == 1
    assert counters["backfills"] == backfills + 1
    assert counters["reconnects"] == 0
    assert sink.latest == expected(fake)
    assert counters["duplicates"] >= 1  # the recovery repeated what the stream had delivered; not merged twice


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


def test_resync_endpoint_downloads_everything_again(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(streaming(svc))
    fake.add_sessions([session(i, T0 + i) for i in range(10)])  # appeared without any topic message
    req = urllib.request.Request(f"{svc.status_url}/resync", method="POST")  # noqa: S310 - loopback test URL
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback test URL
        assert resp.status == 202
    wait_for(lambda: len(sink.latest) == 10, what="resync")
    assert [p for p, _ in fake.calls].count("/pxgrid/mnt/sd/getSessions") >= 2


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


def test_stomp_error_frame_reconnects_and_backfills(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(lambda: streaming(svc)() and fake.subscribed() == 1)
    fake.ws_available = False
    assert fake.send_frame("ERROR", {"message": "session expired"}, b"detail") == 1
    wait_for(lambda: svc.consumer.last_error is not None and "session expired" in svc.consumer.last_error)
    fake.add_sessions([session(5, T0 + 5)])  # changed while the client was away
    fake.ws_available = True
    wait_for(lambda: "aa:bb:cc:00:00:05" in sink.latest, what="backfill after the ERROR frame")
    assert get_status(svc)["counters"]["reconnects"] >= 1


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


def test_ad_groups_from_get_user_groups_are_attached(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.user_groups["user1"] = [{"name": "corp.local/Users/Eng", "type": "ACTIVE_DIRECTORY"}]
    fake.add_sessions([session(1, T0), session(2, T0)])
    sink = MemorySink()
    run_service(settings_for(fake, pki), sink)
    wait_for(lambda: len(sink.latest) == 2)
    assert sink.latest["aa:bb:cc:00:00:01"].ad_groups == ("corp.local/Users/Eng",)
    assert sink.latest["aa:bb:cc:00:00:02"].ad_groups == ()


def test_cli_run_streams_to_the_server_and_stops_on_sigterm(fake: FakePxGrid, pki: Pki, tmp_path: Path) -> None:
    recorder = IdentityRecorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    fake.add_sessions([session(i, T0 + i) for i in range(20)])
    config = tmp_path / "pxgrid.toml"
    config.write_text(f'[pxgrid]\nhosts = ["127.0.0.1"]\nport = {fake.port}\nca_cert = "{pki.ca_cert}"\n')
    argv = [
        sys.executable,
        "-c",
        "from clarion.sources.pxgrid.cli import app; app()",
        "run",
        "--config",
        str(config),
        "--node-name",
        pki.client_cn,
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
        "--server",
        f"http://127.0.0.1:{recorder.server_address[1]}",
        "--token",
        "agent-tok",
        "--status-port",
        "0",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(recorder.sessions) == 20, timeout=60, what="the bulk download POSTed to the server")
        wait_for(lambda: fake.subscribed() == 1, timeout=30)
        fake.publish_sessions([session(99, T0 + 99)])
        wait_for(lambda: len(recorder.sessions) == 21, what="the streamed session POSTed")
        assert recorder.auth == {"Bearer agent-tok"}
        assert recorder.sessions[-1]["mac"] == "aa:bb:cc:00:00:63"
        assert recorder.sessions[-1]["sgt"] == 4
        assert {"value": 4, "name": "Employees", "ise_id": "sg-4", "description": None} in recorder.security_groups
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        recorder.shutdown()
        recorder.server_close()


def test_cli_rejects_bad_settings_with_a_clear_message(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "from clarion.sources.pxgrid.cli import app; app()", "run", "--node-name", "Bad Name"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "node_name 'Bad Name': 1-100 characters of a-z 0-9 - _ ." in result.stderr
    assert "hosts: give at least one pxGrid node" in result.stderr


def test_release_without_recovery_falls_back_to_get_sessions_since(
    pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake = FakePxGrid(pki, auto_approve=True, recovery_supported=False).start()
    try:
        sink = MemorySink()
        svc = run_service(settings_for(fake, pki), sink)
        wait_for(lambda: streaming(svc)() and fake.subscribed() == 1)
        fake.publish_sessions([session(1, T0 + 1)])
        wait_for(lambda: len(sink.latest) == 1)
        fake.add_sessions([session(2, T0 + 2)])
        fake.jump_sequence(3)
        fake.publish_sessions([session(3, T0 + 3)])
        wait_for(lambda: len(sink.latest) == 3, what="recovery through getSessions with startTimestamp")
        paths = [p for p, _ in fake.calls]
        assert "/pxgrid/mnt/sd/getSessionsForRecovery" in paths
        assert paths.count("/pxgrid/mnt/sd/getSessions") == 2  # the first download, then the fallback
        sessions_calls = [body for op, body in fake.rest_bodies if op == "getSessions"]
        assert sessions_calls == [{}, {"startTimestamp": "2024-05-01T10:15:28.001Z"}]  # last merged T0+1 - 2 s
    finally:
        fake.stop()


def test_a_silent_pubsub_node_is_detected_by_pings_and_replaced(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    fake.answer_pings = False  # the node accepts the connection, then never answers a ping
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki, ping_interval_s=0.2, read_timeout_s=1.0), sink)
    wait_for(lambda: svc.consumer.last_error is not None and "nothing received for 1 s" in svc.consumer.last_error)
    fake.answer_pings = True
    connects = fake.ws_connects
    wait_for(lambda: fake.ws_connects > connects and fake.subscribed() == 1)
    fake.publish_sessions([session(1, T0)])
    wait_for(lambda: len(sink.latest) == 1)
    connects = fake.ws_connects
    time.sleep(1.5)  # pongs now keep the link alive past read_timeout
    assert fake.ws_connects == connects
    assert svc.consumer.phase == "streaming"


def test_a_failed_sink_batch_is_recovered_not_lost(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = FlakySink(fail_on_call=2)  # the empty bulk download makes no call: 1 = first message, 2 = second
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(lambda: streaming(svc)() and fake.subscribed() == 1)
    fake.add_sessions([session(0, T0)])
    fake.ws_connects = 0
    fake.publish_sessions([session(1, T0 + 1)])
    wait_for(lambda: "aa:bb:cc:00:00:01" in sink.latest)
    fake.publish_sessions([session(2, T0 + 2)])
    wait_for(lambda: sink.latest == expected(fake), what="the failed batch recovered after a reconnect")
    status = get_status(svc)
    assert status["counters"]["sink_errors"] == 1
    assert status["counters"]["reconnects"] == 1
    assert fake.ws_connects == 1


IDENTITY_QUERY = """query($mac: String!) { device(mac: $mac) { identity {
  user { username } sgt { value name } sessionState ports { switchId interface }
} } }"""


def test_sessions_reach_the_graph_through_the_real_clarion_server(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], store: Any
) -> None:
    """The whole identity path: fake ISE → pxGrid service → HttpSink → uvicorn /api/v1/identity → FalkorDB."""
    from pydantic import SecretStr

    from clarion.api.app import create_app
    from clarion.config import Settings
    from clarion.server import BackgroundServer

    admin, reader = "admin-token-pxgrid-0123456789", "reader-token-pxgrid-0123456789"
    settings = Settings(graph_url=None, admin_token=SecretStr(admin), reader_token=SecretStr(reader))
    fake.add_sessions([session(1, T0 + 1)])
    with BackgroundServer(create_app(settings, store)) as server:

        def identity(mac: str) -> dict[str, Any] | None:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}) as c:
                r = c.post("/graphql", json={"query": IDENTITY_QUERY, "variables": {"mac": mac}})
            device = r.json()["data"]["device"]
            return device["identity"] if device else None

        sink = HttpSink(server.url, admin, backoff_s=0.05)
        svc = run_service(settings_for(fake, pki), sink)
        wait_for(lambda: streaming(svc)() and fake.subscribed() == 1, timeout=30)
        fake.publish_sessions([session(2, T0 + 2, sgt="Contractors", user="bob")])
        wait_for(lambda: identity("aa:bb:cc:00:00:02") is not None, timeout=30, what="bob's device in the graph")
        bob = identity("aa:bb:cc:00:00:02")
        assert bob is not None
        assert bob["sgt"] == {"value": 5, "name": "Contractors"}
        assert bob["user"]["username"] == "bob"
        assert bob["sessionState"] == "STARTED"
        assert {"switchId": "10.10.0.2", "interface": "GigabitEthernet1/0/3"} in bob["ports"]
        first = identity("aa:bb:cc:00:00:01")
        assert first is not None
        assert first["sgt"] == {"value": 4, "name": "Employees"}
        assert sink.rejected == 0


@pytest.mark.parametrize("topic_all", [True, False])
def test_session_topic_all_is_preferred_and_carries_sessions_without_ip(
    pki: Pki, run_service: Callable[..., PxGridService], topic_all: bool
) -> None:
    fake = FakePxGrid(pki, auto_approve=True, topic_all=topic_all).start()
    try:
        sink = MemorySink()
        svc = run_service(settings_for(fake, pki), sink)
        topic = "/topic/com.cisco.ise.session.all" if topic_all else "/topic/com.cisco.ise.session"
        wait_for(lambda: streaming(svc)() and fake.subscribed(topic) == 1)
        assert get_status(svc)["topics"]["clarion-sessions"] == topic
        fake.publish_sessions([session(1, T0 + 1, ip=False), session(2, T0 + 2)])
        wait_for(lambda: "aa:bb:cc:00:00:02" in sink.latest)  # one message carried both when sessionTopicAll
        # without sessionTopicAll the IP-less session only arrives with the next backfill
        assert ("aa:bb:cc:00:00:01" in sink.latest) is topic_all
        if topic_all:
            assert sink.latest["aa:bb:cc:00:00:01"].ips == ()
    finally:
        fake.stop()


def test_group_topic_updates_ad_groups_of_later_sessions(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki), sink)
    wait_for(lambda: streaming(svc)() and fake.subscribed("/topic/com.cisco.ise.session.group") == 1)
    groups = {
        "userGroups": [{"userName": "carol", "groups": [{"name": "corp.local/Users/Ops", "type": "ACTIVE_DIRECTORY"}]}]
    }
    fake.publish_raw("/topic/com.cisco.ise.session.group", json.dumps(groups).encode())
    time.sleep(0.3)  # the group update and the session are separate topics; let the first land
    fake.publish_sessions([session(3, T0 + 3, user="carol")])
    wait_for(lambda: "aa:bb:cc:00:00:03" in sink.latest)
    assert sink.latest["aa:bb:cc:00:00:03"].ad_groups == ("corp.local/Users/Ops",)


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
