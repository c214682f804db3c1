"""EdgeGraphs of the synthetic campus: valid, exact to the flow totals, split under the cap, role-free."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from clarion.synth import Campus, CampusSpec, generate_campus, write_edge_graphs
from clarion_edge import wire

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def campus() -> Campus:
    return generate_campus(CampusSpec(seed=7, switches=8, devices=2_000, remote_hosts=200))


@pytest.fixture(scope="module")
def graphs(campus: Campus) -> list[wire.EdgeGraph]:
    return list(campus.edge_graphs())


# --- EdgeGraphs ------------------------------------------------------------------------------


def test_every_graph_is_valid_and_round_trips(graphs: list[wire.EdgeGraph]) -> None:
    for g in graphs:
        wire.validate(g)
        assert g.digest is not None
        again = wire.decode(wire.encode(g))
        assert again == g


def test_one_agent_per_switch_with_rising_seq_and_one_graph_per_window(
    campus: Campus, graphs: list[wire.EdgeGraph]
) -> None:
    seqs: dict[str, list[int]] = defaultdict(list)
    for g in graphs:
        assert g.agent_id == "edge-" + g.switch.switch_id
        seqs[g.agent_id].append(g.seq)
    assert set(seqs) == {"edge-" + s.switch_id for s in campus.switches}
    for agent_seqs in seqs.values():
        assert agent_seqs == list(range(1, 25))
    other = list(campus.edge_graphs(agent_id_prefix="site1-", start_seq=100))
    assert other[0].agent_id.startswith("site1-")
    assert other[0].seq == 100


def test_graph_totals_equal_flow_totals(campus: Campus, graphs: list[wire.EdgeGraph]) -> None:
    totals = Counter[str]()
    for g in graphs:
        for e in g.edges:
            if isinstance(e, wire.FlowsTo):
                totals.update(bytes=e.bytes, packets=e.packets, flows=e.flows)
                assert g.window.start <= e.first_seen <= e.last_seen < g.window.end
    stats = campus.stats()
    assert (totals["bytes"], totals["packets"], totals["flows"]) == (stats["bytes"], stats["packets"], stats["flows"])
    assert stats["bytes"] == int(campus.flows["bytes"].sum())


def test_flows_are_recorded_at_the_switch_of_the_local_end(campus: Campus, graphs: list[wire.EdgeGraph]) -> None:
    switch_of = {}
    for d in campus.devices:
        switch_of[d.key] = d.switch_id
    remote = set(campus.remote_hosts)
    keys = 0
    for g in graphs:
        for e in g.edges:
            if isinstance(e, wire.FlowsTo):
                local = e.dst if e.src in remote else e.src
                assert switch_of[local] == g.switch.switch_id
                keys += 1
            else:
                d = campus.device(e.device)
                assert (d.switch_id, d.interface, d.vlan) == (g.switch.switch_id, e.interface, e.vlan)
    assert keys > 0


def test_nodes_carry_sgt_only_where_the_switch_exports_it(campus: Campus, graphs: list[wire.EdgeGraph]) -> None:
    exports = {s.switch_id: s.exports_sgt for s in campus.switches}
    assert set(exports.values()) == {True, False}
    seen_ip_only = 0
    for g in graphs:
        for n in g.nodes:
            if isinstance(n, wire.Device):
                d = campus.device(n.mac)
                assert n.ips == [d.ip]
                assert n.local
                assert n.sgt == (d.sgt if exports[g.switch.switch_id] else None)
            elif isinstance(n, wire.IpEndpoint) and n.local:
                assert campus.device(n.ip).mac is None
                seen_ip_only += 1
            elif isinstance(n, wire.IpEndpoint):
                assert n.ip in campus.remote_hosts
                assert n.sgt is None
    assert seen_ip_only > 0


def test_true_role_never_reaches_a_graph(campus: Campus, graphs: list[wire.EdgeGraph]) -> None:
    blob = b"\n".join(wire.encode(g) for g in graphs).lower()
    for role in campus.roles:
        assert role.encode() not in blob, role
        assert role.replace("_", "-").encode() not in blob, role
    for profile in {d.profile for d in campus.devices if d.profile != "Unknown"}:
        assert profile.lower().encode() not in blob, profile


def test_big_windows_are_split_under_the_edge_cap(campus: Campus, graphs: list[wire.EdgeGraph]) -> None:
    small = list(campus.edge_graphs(max_edges=300))
    assert max(len(g.edges) for g in small) == 300
    assert len(small) > len(graphs)
    seqs: dict[str, list[int]] = defaultdict(list)
    for g in small:
        wire.validate(g)
        seqs[g.agent_id].append(g.seq)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())
    total = sum(e.bytes for g in small for e in g.edges if isinstance(e, wire.FlowsTo))
    assert total == campus.stats()["bytes"]
    with pytest.raises(ValueError, match="max_edges"):
        list(campus.edge_graphs(max_edges=60_000))


def test_write_edge_graphs_writes_decodable_files(tmp_path: Path) -> None:
    c = generate_campus(CampusSpec(seed=2, switches=2, devices=200, remote_hosts=20))
    paths = write_edge_graphs(c, tmp_path / "out")
    assert len(paths) == 2 * 24
    decoded = [wire.decode(p.read_bytes()) for p in paths]
    assert [g.digest for g in decoded] == [g.digest for g in c.edge_graphs()]
    assert paths[0].name == "edge-sw-dc-01-0000000001.json"


def test_bad_agent_prefix_is_refused(campus: Campus) -> None:
    with pytest.raises(ValueError, match="agent_id_prefix"):
        next(campus.edge_graphs(agent_id_prefix="edge agent "))
    with pytest.raises(ValueError, match="start_seq"):
        next(campus.edge_graphs(start_seq=0))


def test_module_cli_writes_graphs_and_prints_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clarion.synth.__main__ import main

    assert main([str(tmp_path), "--devices", "150", "--switches", "2", "--remote-hosts", "10"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == len(list(tmp_path.glob("*.json"))) == 48
    assert summary["devices"] == 150
    assert summary["flow_rows"] == 150 * 40
    assert main([str(tmp_path), "--devices", "0"]) == 2
    assert "CampusSpec.devices=0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs",
    [
        {"devices": 1, "switches": 1, "remote_hosts": 1},
        {"devices": 5, "switches": 50, "remote_hosts": 3},
        {"devices": 50, "switches": 1, "days": 2, "window_ms": DAY_MS},
        {"devices": 200, "switches": 3, "window_ms": 7_000_000, "noise": 0.0},
    ],
)
def test_tiny_and_odd_campuses_still_give_valid_exact_graphs(kwargs: dict[str, int | float]) -> None:
    c = generate_campus(CampusSpec(**kwargs))  # type: ignore[arg-type]
    graphs = list(c.edge_graphs())
    n_windows = -(-c.spec.days * DAY_MS // c.spec.window_ms)
    assert len(graphs) == n_windows * len(c.switches)
    for g in graphs:
        wire.decode(wire.encode(g))
    assert sum(e.bytes for g in graphs for e in g.edges if isinstance(e, wire.FlowsTo)) == c.stats()["bytes"]
    assert graphs[-1].window.end == c.spec.start_ms + c.spec.days * DAY_MS


def test_mac_dropout_names_some_devices_by_ip_in_some_windows() -> None:
    c = generate_campus(CampusSpec(seed=9, switches=3, devices=300, remote_hosts=20, mac_dropout=0.2))
    graphs = list(c.edge_graphs())
    as_device: set[str] = set()
    as_ip: set[str] = set()
    for g in graphs:
        wire.decode(wire.encode(g))
        names = {n.key for n in g.nodes if isinstance(n, wire.Device | wire.IpEndpoint)}
        for n in g.nodes:
            if isinstance(n, wire.Device):
                as_device.add(c.device(n.mac).ip)
            elif isinstance(n, wire.IpEndpoint) and n.local:
                d = c.device(n.ip)
                if d.mac is not None:
                    as_ip.add(d.ip)
                    assert d.mac not in names, "a device is named one way within a window"
        for e in g.edges:
            if isinstance(e, wire.ConnectedTo):
                assert e.device in names
    both = as_device & as_ip
    assert len(both) > 50
    totals = sum(e.bytes for g in graphs for e in g.edges if isinstance(e, wire.FlowsTo))
    assert totals == c.stats()["bytes"]
    without = generate_campus(CampusSpec(seed=9, switches=3, devices=300, remote_hosts=20))
    assert np.array_equal(without.flows, c.flows), "dropout changes only how graphs name devices"
    assert [g.digest for g in without.edge_graphs()] != [g.digest for g in graphs]
