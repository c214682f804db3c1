"""A small valid EdgeGraph for the sender, spool and CLI tests."""

from __future__ import annotations

from clarion_edge import wire


def sample_graph(seq: int = 1, *, agent_id: str = "edge-1", bytes_: int = 1000) -> wire.EdgeGraph:
    """A small valid EdgeGraph: one local device talking HTTPS to one remote IP."""
    return wire.EdgeGraph(
        schema_version=1,
        agent_id=agent_id,
        seq=seq,
        switch=wire.SwitchInfo(switch_id="sw-1", mgmt_ip="10.0.0.1"),
        window=wire.Window(start=1_700_000_000_000, end=1_700_000_060_000),
        nodes=[
            wire.Device(mac="00:11:22:33:44:55", ips=["10.1.2.3"], sgt=10),
            wire.IpEndpoint(ip="192.0.2.7"),
            wire.Service(protocol=6, port=443),
        ],
        edges=[
            wire.FlowsTo(
                src="00:11:22:33:44:55",
                dst="192.0.2.7",
                protocol=6,
                port=443,
                bytes=bytes_,
                packets=10,
                flows=1,
                first_seen=1_700_000_001_000,
                last_seen=1_700_000_002_000,
            ),
            wire.ConnectedTo(device="00:11:22:33:44:55", interface="12", vlan=20),
        ],
    )
