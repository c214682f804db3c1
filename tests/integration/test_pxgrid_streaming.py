"""pxGrid sessions, security groups and AD groups streamed over real WebSocket/STOMP from the fake ISE node."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, expected_with, get_status, settings_for, streaming, wait_for
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here


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
