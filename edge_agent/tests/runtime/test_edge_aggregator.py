"""The numpy aggregator against a record-by-record Python reference, and its windowing and limits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from flowgen import SITE, random_records, reference, summarise

from clarion_edge import wire
from clarion_edge.aggregator import Aggregator, AggregatorConfig, ClosedWindow
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.sitenet import addr_bytes

T0 = 1_699_999_980_000  # a multiple of 60 s
SW = wire.SwitchInfo(switch_id="sw-1")


def _agg(**kw: object) -> Aggregator:
    return Aggregator(AggregatorConfig(agent_id="edge-1", site_prefixes=SITE, **kw))  # type: ignore[arg-type]


def _build(windows: list[ClosedWindow]) -> list[wire.EdgeGraph]:
    return [g for w in windows for g in w.build()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_matches_the_record_by_record_reference(seed: int) -> None:
    recs = random_records(3000, seed)
    agg = _agg(chunk_records=10**6)
    assert agg.add(SW, recs, T0 + 5) == []
    graphs = _build(agg.poll(T0 + 60_000))
    assert len(graphs) == 1
    assert graphs[0].window == wire.Window(start=T0, end=T0 + 60_000)
    got, want = summarise(graphs), reference(recs)
    assert got["edges"] == want["edges"]
    assert got["nodes"] == want["nodes"]
    assert got["services"] == want["services"]
    assert got["conn"] == want["conn"]
    assert sum(v[0] for v in got["edges"].values()) == int(recs["bytes"].sum())
    assert sum(v[2] for v in got["edges"].values()) == 3000


def test_split_into_several_graphs_keeps_every_edge_once_and_each_graph_self_contained() -> None:
    recs = random_records(3000, 4)
    agg = _agg(chunk_records=10**6, max_edges=40, max_nodes=25)
    agg.add(SW, recs, T0)
    graphs = _build(agg.flush_all(T0 + 1000))
    assert len(graphs) > 10
    for g in graphs:
        assert len(g.edges) <= 40
        assert len(g.nodes) <= 25
        wire.validate(g)  # every src/dst/device is a node of the same graph
    assert summarise(graphs)["edges"] == reference(recs)["edges"]


def test_chunked_reduction_equals_one_pass_when_direction_is_unambiguous() -> None:
    recs = random_records(5000, 5)
    recs["dst_port"] = np.where(recs["src_port"] >= 1024, 443, recs["dst_port"])  # no fan-in decisions
    one = _agg(chunk_records=10**6)
    one.add(SW, recs, T0)
    many = _agg(chunk_records=97)
    for i in range(0, 5000, 61):
        many.add(SW, recs[i : i + 61], T0 + 1)
    a, b = summarise(_build(one.flush_all(T0 + 2))), summarise(_build(many.flush_all(T0 + 2)))
    assert a == b
    assert a["edges"] == reference(recs)["edges"]


def _rec(src: str, dst: str, sport: int, dport: int, proto: int = 6, flags: int = 0x1B, **kw: int) -> np.void:
    r = np.zeros(1, dtype=FLOW_DTYPE)
    r["src_addr"], r["dst_addr"] = addr_bytes(src), addr_bytes(dst)
    r["src_port"], r["dst_port"], r["protocol"], r["tcp_flags"] = sport, dport, proto, flags
    r["bytes"], r["packets"], r["first_ms"], r["last_ms"] = 100, 1, T0, T0 + 1
    for k, v in kw.items():
        r[k] = v
    return r[0]


def _edges(*recs: np.void) -> set[tuple[str, str, int, int]]:
    agg = _agg(chunk_records=10**6)
    agg.add(SW, np.array(list(recs), dtype=FLOW_DTYPE), T0)
    return set(summarise(_build(agg.flush_all(T0 + 1)))["edges"])


def test_service_side_rules() -> None:
    # the reply of an HTTPS session points from client to server, like the request
    assert _edges(_rec("192.0.2.1", "10.1.0.1", 443, 51000)) == {("10.1.0.1", "192.0.2.1", 6, 443)}
    # SYN-only: the source opened the connection even to a low port of its own
    assert _edges(_rec("10.1.0.1", "10.1.0.2", 80, 8080, flags=0x02)) == {("10.1.0.1", "10.1.0.2", 6, 8080)}
    # both well-known: the lower port serves (DHCP server 67 -> client 68)
    assert _edges(_rec("10.1.0.1", "10.1.0.9", 67, 68, proto=17)) == {("10.1.0.9", "10.1.0.1", 17, 67)}
    # registered service port beats an ephemeral one even though the source port is lower
    assert _edges(_rec("10.1.0.5", "10.1.0.6", 3306, 2000)) == {("10.1.0.6", "10.1.0.5", 6, 3306)}
    # fan-in: 10.1.0.1:7777 answers many peers, so it is the service despite its higher port
    peers = [_rec("10.1.0.1", f"10.1.0.{i}", 7777, 5000 + i) for i in range(2, 6)]
    assert _edges(*peers) == {(f"10.1.0.{i}", "10.1.0.1", 6, 7777) for i in range(2, 6)}
    # ICMP echo reply points at the pinged host, port 0
    assert _edges(_rec("192.0.2.1", "10.1.0.1", 0, 0, proto=1)) == {("10.1.0.1", "192.0.2.1", 1, 0)}
    assert _edges(_rec("10.1.0.1", "192.0.2.1", 0, 8 << 8, proto=1)) == {("10.1.0.1", "192.0.2.1", 1, 0)}


def test_mac_names_local_endpoints_only_and_claims_their_ip() -> None:
    mac, router = 0x001122334455, 0x00AAAAAAAAAA
    edges = _edges(
        _rec("10.1.0.7", "192.0.2.1", 50000, 443, src_mac=mac, dst_mac=router, in_if=12, vlan=30, src_sgt=5),
        _rec("192.0.2.1", "10.1.0.7", 443, 50001),  # reply without MACs: the same device by its IP
    )
    assert edges == {("00:11:22:33:44:55", "192.0.2.1", 6, 443)}
    agg = _agg()
    agg.add(SW, np.array([_rec("10.1.0.7", "192.0.2.1", 50000, 443, src_mac=mac, in_if=12, vlan=30, src_sgt=5)]), T0)
    (g,) = _build(agg.flush_all(T0 + 1))
    assert g.nodes[0] == wire.Device(mac="00:11:22:33:44:55", ips=["10.1.0.7"], sgt=5, local=True)
    assert g.nodes[1] == wire.IpEndpoint(ip="192.0.2.1", sgt=None, local=False)
    assert g.edges[-1] == wire.ConnectedTo(device="00:11:22:33:44:55", interface="12", vlan=30)


def test_latest_sgt_and_attachment_win() -> None:
    mac = 0x001122334455
    a = _rec("10.1.0.7", "192.0.2.1", 50000, 443, src_mac=mac, in_if=1, src_sgt=5)
    b = _rec("10.1.0.7", "192.0.2.1", 50002, 443, src_mac=mac, in_if=2, src_sgt=6)
    agg = _agg(chunk_records=1)
    agg.add(SW, np.array([a]), T0)
    agg.add(SW, np.array([b]), T0)
    (g,) = _build(agg.flush_all(T0 + 1))
    assert isinstance(g.nodes[0], wire.Device)
    assert g.nodes[0].sgt == 6
    assert g.edges[-1] == wire.ConnectedTo(device="00:11:22:33:44:55", interface="2", vlan=None)


def test_windows_align_to_wall_clock_and_close_on_time() -> None:
    agg = _agg(window_s=60)
    recs = random_records(100, 6)
    assert agg.add(SW, recs, T0 + 59_999) == []
    closed = agg.add(SW, recs[:10], T0 + 60_000)  # the next window's first records close the previous
    assert [w.window for w in closed] == [wire.Window(start=T0, end=T0 + 60_000)]
    assert sum(e.flows for g in _build(closed) for e in g.edges if isinstance(e, wire.FlowsTo)) == 100
    assert agg.poll(T0 + 119_999) == []
    (w,) = agg.poll(T0 + 120_000)
    assert w.window == wire.Window(start=T0 + 60_000, end=T0 + 120_000)
    assert agg.poll(T0 + 10**6) == []  # an idle window emits nothing


def test_switches_get_separate_windows() -> None:
    agg = _agg()
    agg.add(SW, random_records(50, 7), T0)
    agg.add(wire.SwitchInfo(switch_id="sw-2"), random_records(70, 8), T0)
    closed = agg.poll(T0 + 60_000)
    assert sorted((w.switch.switch_id, sum(int(f) for f in w.tables.edges["flows"])) for w in closed) == [
        ("sw-1", 50),
        ("sw-2", 70),
    ]


def test_key_cap_flushes_early_and_loses_nothing() -> None:
    agg = _agg(max_keys=200, chunk_records=100)
    recs = random_records(4000, 9)
    recs["src_port"] = np.arange(4000) % 60000 + 1024  # many distinct client ports...
    recs["dst_port"] = 443
    recs["protocol"] = 6
    recs["src_addr"] = [addr_bytes(f"10.2.{i // 250}.{i % 250}") for i in range(4000)]  # ...and hosts
    closed = []
    for i in range(0, 4000, 100):
        closed += agg.add(SW, recs[i : i + 100], T0 + i)
    closed += agg.flush_all(T0 + 5000)
    assert agg.counters.early_flushes >= 5
    graphs = _build(closed)
    assert sum(e.bytes for g in graphs for e in g.edges if isinstance(e, wire.FlowsTo)) == int(recs["bytes"].sum())
    assert all(w.tables.keys() <= 200 + 100 + 100 for w in closed)
    windows = [w.window for w in closed]
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


def test_garbage_counters_and_times_are_clamped_into_the_wire_ranges() -> None:
    r = _rec("10.1.0.1", "192.0.2.1", 50000, 443, bytes=2**64 - 1, first_ms=-5, last_ms=2**62)
    agg = _agg()
    agg.add(SW, np.array([r, r]), T0)
    (g,) = _build(agg.flush_all(T0 + 1))
    (e,) = [e for e in g.edges if isinstance(e, wire.FlowsTo)]
    assert (e.bytes, e.first_seen, e.last_seen) == (2 * 2**48, 0, 32_503_680_000_000)
    assert agg.counters.clamped == 2
    wire.validate(g.sealed())


def test_bad_config_and_dtype_are_refused() -> None:
    with pytest.raises(ValueError, match=r"window must be 1\.\.86400 seconds"):
        AggregatorConfig(agent_id="a", window_s=0)
    with pytest.raises(ValueError, match="at least 3"):
        AggregatorConfig(agent_id="a", max_edges=2)
    with pytest.raises(TypeError, match="FLOW_DTYPE"):
        _agg().add(SW, np.zeros(3, dtype=np.int64), T0)


def test_key_cap_spans_switches_and_flushes_the_largest_window() -> None:
    agg = _agg(max_keys=300, chunk_records=50)
    big, small = random_records(400, 10), random_records(60, 11)
    big["src_addr"] = [addr_bytes(f"10.3.{i // 200}.{i % 200}") for i in range(400)]  # 400 distinct clients
    small["src_addr"] = [addr_bytes(f"10.4.0.{i % 60}") for i in range(60)]
    for r in (big, small):
        r["dst_port"], r["protocol"] = 443, 6
    sw2 = wire.SwitchInfo(switch_id="sw-2")
    closed = agg.add(sw2, small, T0)
    for i in range(0, 400, 50):
        closed += agg.add(SW, big[i : i + 50], T0 + i)
    assert closed
    assert {w.switch.switch_id for w in closed} == {"sw-1"}  # the small switch's window stays open
    closed += agg.flush_all(T0 + 1000)
    total = {(w.switch.switch_id): 0 for w in closed}
    for w in closed:
        total[w.switch.switch_id] += int(w.tables.edges["flows"].sum())
    assert total == {"sw-1": 400, "sw-2": 60}
