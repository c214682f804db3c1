"""Two batches merged out of order (the pxGrid sink keeps two requests in flight) give the newest identity per
device, by each event's own timestamp: an older batch arriving after a newer one overwrites nothing current,
and the graph is the one the batches give in stream order."""

from __future__ import annotations

from typing import Any

import pytest

from clarion.identity import merge_sessions
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from tests.helpers import T0
from tests.integration.test_identity_sessions import state

pytestmark = pytest.mark.integration

DEVICE = """MATCH (d:Device {uid: $m})
RETURN d.identity_ts AS ts, d.session_state AS state, d.sgt AS sgt, d.ip AS ip, d.profile AS profile,
       d.switch_id AS switch_id, d.interface AS interface, d.vlan AS vlan, d.first_seen AS first_seen"""
OPEN = """MATCH (d:Device {uid: $m})-[r:ASSIGNED_TO|HAS_SGT]->(x) WHERE r.until IS NULL
RETURN type(r) AS kind, coalesce(x.username, x.value) AS key ORDER BY kind"""


def dev(i: int) -> str:
    return f"02:00:00:00:0d:{i:02x}"


def older(i: int, ts: int) -> Session:
    return Session(
        mac=dev(i), ips=(f"10.70.0.{i}",), username="CORP\\olduser", sgt=5, switch_id="sw-old",
        interface="Gi1/0/1", vlan=10, endpoint_profile="Old-Profile", timestamp_ms=ts,
    )  # fmt: skip


def newer(i: int, ts: int) -> Session:
    return Session(
        mac=dev(i), ips=(f"10.71.0.{i}",), username="CORP\\newuser", sgt=8, switch_id="sw-new",
        interface="Gi2/0/2", vlan=20, endpoint_profile="New-Profile", timestamp_ms=ts,
    )  # fmt: skip


def first(i: int) -> Session:
    return Session(mac=dev(i), ips=(f"10.72.0.{i}",), username="CORP\\first", sgt=4, timestamp_ms=T0)


def identity(store: FalkorDBStore, mac: str) -> dict[str, Any]:
    d = store._query(DEVICE, {"m": mac}, name="device")[0]
    d["open"] = [(r["kind"], r["key"]) for r in store._query(OPEN, {"m": mac}, name="open")]
    return d


@pytest.mark.parametrize("known", [False, True], ids=["new-devices", "known-devices"])
def test_an_older_batch_arriving_after_a_newer_one_overwrites_nothing(
    store: FalkorDBStore, falkordb_server: FalkorDBStore, known: bool
) -> None:
    n = 6
    in_order = falkordb_server.with_graph(store.graph_name + "_in_order")
    in_order.ensure_schema()
    try:
        for graph, batches in (
            (store, [[newer(i, T0 + 2_000) for i in range(n)], [older(i, T0 + 1_000) for i in range(n)]]),
            (in_order, [[older(i, T0 + 1_000) for i in range(n)], [newer(i, T0 + 2_000) for i in range(n)]]),
        ):
            if known:  # the devices exist (a bulk download before): everything takes the full MERGE path
                merge_sessions(graph, [first(i) for i in range(n)])
            for batch in batches:
                merge_sessions(graph, batch)
        for i in range(n):
            assert identity(store, dev(i)) == {
                "ts": T0 + 2_000, "state": "STARTED", "sgt": 8, "ip": f"10.71.0.{i}", "profile": "New-Profile",
                "switch_id": "sw-new", "interface": "Gi2/0/2", "vlan": 20, "first_seen": T0 if known else T0 + 1_000,
                "open": [("ASSIGNED_TO", "newuser"), ("HAS_SGT", 8)],
            }  # fmt: skip
        # every interval (the old user's and SGT's since/until, IP bindings, ports) as in stream order
        assert state(store) == state(in_order)
    finally:
        in_order.drop_graph()


def test_an_older_event_of_the_same_user_widens_the_interval_back(store: FalkorDBStore) -> None:
    merge_sessions(store, [newer(1, T0 + 5_000)])
    merge_sessions(store, [newer(1, T0 + 3_000)])
    rows = store._query(
        "MATCH (d:Device {uid: $m})-[a:ASSIGNED_TO]->(:User) RETURN a.since AS s, a.last_seen AS l, a.until AS u",
        {"m": dev(1)}, name="a",
    )  # fmt: skip
    assert [(r["s"], r["l"], r["u"]) for r in rows] == [(T0 + 3_000, T0 + 5_000, None)]
    assert identity(store, dev(1))["ts"] == T0 + 5_000


def test_a_touch_refused_for_one_device_reads_only_that_one_again(
    store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent request that moved one device costs one device's read, not the whole batch's."""
    from clarion.identity import sessions as sessions_module

    merge_sessions(store, [newer(i, T0) for i in range(3)])  # remembered: the next identical events only touch
    store._query("MATCH (d:Device {uid: $m}) SET d.identity_ts = $t", {"m": dev(1), "t": T0 + 10}, name="moved")
    asked: list[list[str]] = []
    real = sessions_module.read_current
    monkeypatch.setattr(sessions_module, "read_current", lambda st, macs: asked.append(macs) or real(st, macs))
    result = merge_sessions(store, [newer(i, T0 + 1_000) for i in range(3)])
    assert asked == [[dev(1)]]
    assert (result.touched, result.created, result.statements) == (3, 0, 2)
    assert [identity(store, dev(i))["ts"] for i in range(3)] == [T0 + 1_000] * 3
