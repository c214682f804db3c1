"""Small builders for EdgeGraphs used across tests (literal, readable data)."""

from __future__ import annotations

from clarion_edge import wire

T0 = 1_793_577_600_000  # 2026-11-02T00:00:00Z


def mac(i: int) -> str:
    return f"02:00:00:00:{i >> 8 & 255:02x}:{i & 255:02x}"


def small_graph(seq: int = 1, agent: str = "edge-sw1", switch: str = "sw1", bytes_: int = 1000) -> wire.EdgeGraph:
    """Three devices (one with SGT 10), a remote host, three flows: exact totals are known."""
    nodes: list[wire.Node] = [
        wire.Device(mac=mac(1), ips=["10.1.0.1"], sgt=4),
        wire.Device(mac=mac(2), ips=["10.1.0.2"], sgt=10),
        wire.Device(mac=mac(3), ips=["10.1.0.3"]),
        wire.IpEndpoint(ip="198.51.100.7"),
        wire.Service(protocol=6, port=9100),
    ]
    edges: list[wire.Edge] = [
        wire.FlowsTo(src=mac(1), dst=mac(2), protocol=6, port=9100, bytes=bytes_, packets=10, flows=2,
                     first_seen=T0 + 1000, last_seen=T0 + 5000),
        wire.FlowsTo(src=mac(1), dst="198.51.100.7", protocol=6, port=443, bytes=5000, packets=20, flows=1,
                     first_seen=T0 + 2000, last_seen=T0 + 3000),
        wire.FlowsTo(src=mac(3), dst=mac(2), protocol=17, port=161, bytes=300, packets=3, flows=3,
                     first_seen=T0 + 100, last_seen=T0 + 200),
        wire.ConnectedTo(device=mac(1), interface="Gi1/0/1", vlan=10),
        wire.ConnectedTo(device=mac(2), interface="Gi1/0/2", vlan=20),
        wire.ConnectedTo(device=mac(3), interface="Gi1/0/3", vlan=10),
    ]  # fmt: skip
    return wire.EdgeGraph(
        schema_version=1, agent_id=agent, seq=seq,
        switch=wire.SwitchInfo(switch_id=switch, name=f"access-{switch}", mgmt_ip="192.0.2.10"),
        window=wire.Window(start=T0, end=T0 + 60_000), nodes=nodes, edges=edges,
    ).sealed()  # fmt: skip
