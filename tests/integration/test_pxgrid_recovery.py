"""pxGrid stream losses (dropped sockets, sequence gaps, ERROR frames, silent nodes, failed sinks) recovered by
reconnecting and backfilling, so no session ISE holds is lost."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

import pytest

from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, FlakySink, expected, get_status, settings_for, streaming, wait_for
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here


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
