"""IP-only flow endpoints attached to the MAC device that held the IP at the flow's time (real FalkorDB)."""

from __future__ import annotations

from typing import Any

import pytest

from clarion.identity import after_flow_batch, correlate, merge_sessions, record_agent_bindings
from clarion.ingest.merger import merge
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from clarion_edge import wire
from tests.helpers import T0

pytestmark = pytest.mark.integration

H = 3_600_000
DAY = 86_400_000
A, B, SRV, PRN = "02:00:00:00:0c:0a", "02:00:00:00:0c:0b", "02:00:00:00:0c:99", "02:00:00:00:0c:98"
IP = "10.50.0.7"


def flows_graph(
    seq: int, start: int, flows: list[wire.FlowsTo], extra: list[wire.Node] | None = None
) -> wire.EdgeGraph:
    """A core switch that sees the client only by IP and the servers by MAC."""
    return wire.EdgeGraph(
        schema_version=1, agent_id="edge-core", seq=seq, switch=wire.SwitchInfo(switch_id="core1"),
        window=wire.Window(start=start, end=start + 4 * H),
        nodes=[wire.IpEndpoint(ip=IP, local=True), wire.Device(mac=SRV, ips=["10.9.0.1"]),
               wire.Device(mac=PRN, ips=["10.9.0.2"]), *(extra or [])],
        edges=list(flows),
    ).sealed()  # fmt: skip


def flow(src: str, dst: str, port: int, first: int, last: int, nbytes: int = 100) -> wire.FlowsTo:
    return wire.FlowsTo(src=src, dst=dst, protocol=6, port=port, bytes=nbytes, packets=2, flows=1,
                        first_seen=first, last_seen=last)  # fmt: skip


def edges(store: FalkorDBStore) -> set[tuple[Any, ...]]:
    rows = store._query(
        "MATCH (a:Device)-[e:FLOWS_TO]->(b:Device) RETURN a.uid AS a, b.uid AS b, e.port AS port, e.bytes AS bytes",
        {}, name="edges",
    )  # fmt: skip
    return {(r["a"], r["b"], r["port"], r["bytes"]) for r in rows}


def ip_node_exists(store: FalkorDBStore) -> bool:
    return bool(store._query("MATCH (n:Device {uid: $ip}) RETURN n.uid", {"ip": IP}, name="ipnode"))


def test_two_devices_holding_one_ip_at_different_times_get_their_own_flows(store: FalkorDBStore) -> None:
    # day 1, 08:00-12:00 the IP talks to the web server; day 2 the same IP is scanned by the server
    merge(store, flows_graph(1, T0 + 8 * H, [flow(IP, SRV, 443, T0 + 9 * H, T0 + 10 * H, 100)]))
    merge(store, flows_graph(2, T0 + DAY + 8 * H, [flow(SRV, IP, 22, T0 + DAY + 9 * H, T0 + DAY + 9 * H + 5, 7)]))
    # A held the IP from 08:00 on day 1 until B got it on day 2 at 06:00
    merge_sessions(store, [
        Session(mac=A, ips=(IP,), username="alice", timestamp_ms=T0 + 8 * H),
        Session(mac=B, ips=(IP,), username="bob", timestamp_ms=T0 + DAY + 6 * H),
    ])  # fmt: skip
    result = correlate(store)
    assert result.moved == 2
    assert edges(store) == {(A, SRV, 443, 100), (SRV, B, 22, 7)}
    assert not ip_node_exists(store)  # nothing left on it: deleted

    again = correlate(store)  # idempotent
    assert (again.moved, edges(store)) == (0, {(A, SRV, 443, 100), (SRV, B, 22, 7)})


def test_flow_outside_or_across_bindings_stays_on_the_ip_node(store: FalkorDBStore) -> None:
    merge(store, flows_graph(1, T0, [
        flow(IP, SRV, 443, T0 + 1 * H, T0 + 2 * H),  # before anyone held the IP: unknown
        flow(IP, PRN, 9100, T0 + 5 * H, T0 + 7 * H),  # A until 06:00, B after: the IP changed hands inside it
        flow(IP, SRV, 80, T0 + 3 * H + 1, T0 + 4 * H),  # inside A's binding
    ]))  # fmt: skip
    merge_sessions(store, [
        Session(mac=A, ips=(IP,), username="alice", timestamp_ms=T0 + 3 * H),
        Session(mac=B, ips=(IP,), username="bob", timestamp_ms=T0 + 6 * H),
    ])  # fmt: skip
    result = correlate(store, [IP])
    assert (result.moved, result.ambiguous, result.uncovered) == (1, 0, 2)
    assert edges(store) == {(IP, SRV, 443, 100), (IP, PRN, 9100, 100), (A, SRV, 80, 100)}
    assert ip_node_exists(store)


def test_moved_counters_add_to_the_devices_own_flows(store: FalkorDBStore) -> None:
    # the access switch sees A by MAC, the core only by IP, on the same service and day
    own = wire.EdgeGraph(
        schema_version=1, agent_id="edge-acc", seq=1, switch=wire.SwitchInfo(switch_id="acc1"),
        window=wire.Window(start=T0, end=T0 + H),
        nodes=[wire.Device(mac=A, ips=[IP]), wire.Device(mac=SRV)], edges=[flow(A, SRV, 443, T0 + 10, T0 + 20, 50)],
    ).sealed()  # fmt: skip
    merge(store, own)
    assert record_agent_bindings(store, own) == [IP]  # the agent saw A with the IP in [T0, T0+1h]
    merge(store, flows_graph(1, T0, [flow(IP, SRV, 443, T0 + 30, T0 + 40, 100)]))
    result = correlate(store, [IP])
    assert result.moved == 1
    assert edges(store) == {(A, SRV, 443, 150)}
    row = store._query(
        "MATCH (:Device {uid: $a})-[e:FLOWS_TO]->() RETURN e.first_seen AS f, e.last_seen AS l, e.flows AS n",
        {"a": A}, name="e",
    )[0]  # fmt: skip
    assert (row["f"], row["l"], row["n"]) == (T0 + 10, T0 + 40, 2)


def test_edge_between_two_ip_only_endpoints_ends_between_the_two_devices(store: FalkorDBStore) -> None:
    other = "10.50.0.8"
    g = wire.EdgeGraph(
        schema_version=1, agent_id="edge-core", seq=1, switch=wire.SwitchInfo(switch_id="core1"),
        window=wire.Window(start=T0, end=T0 + H),
        nodes=[wire.IpEndpoint(ip=IP, local=True), wire.IpEndpoint(ip=other, local=True)],
        edges=[flow(IP, other, 445, T0 + 10, T0 + 20)],
    ).sealed()  # fmt: skip
    merge(store, g)
    merge_sessions(store, [Session(mac=A, ips=(IP,), timestamp_ms=T0), Session(mac=B, ips=(other,), timestamp_ms=T0)])
    result = correlate(store)
    assert result.moved == 2
    assert result.passes == 2
    assert edges(store) == {(A, B, 445, 100)}
    assert store._query("MATCH (n:Device {kind: 'ip'}) RETURN count(n) AS n", {}, name="n")[0]["n"] == 0


def test_identity_merge_through_the_service_correlates_at_once(store: FalkorDBStore) -> None:
    from clarion.identity import IdentityBatch, apply_identity

    merge(store, flows_graph(1, T0, [flow(IP, SRV, 443, T0 + H, T0 + 2 * H)]))
    result = apply_identity(store, IdentityBatch(sessions=[Session(mac=A, ips=(IP,), timestamp_ms=T0)]))
    assert result.correlation.moved == 1
    assert edges(store) == {(A, SRV, 443, 100)}


def test_flow_merger_hook_attaches_a_new_batchs_ip_endpoints(store: FalkorDBStore) -> None:
    merge_sessions(store, [Session(mac=A, ips=(IP,), username="alice", timestamp_ms=T0)])
    g = flows_graph(1, T0 + H, [flow(IP, SRV, 443, T0 + H + 5, T0 + H + 9, 40)])
    merge(store, g)
    result = after_flow_batch(store, g)
    assert result.moved == 1
    assert edges(store) == {(A, SRV, 443, 40)}
    assert not ip_node_exists(store)
