"""An endpoint one switch sees only by IP is attached to the device another switch saw with that IP."""

from __future__ import annotations

import time

import pytest

from clarion_edge import wire
from tests.e2e.conftest import ADMIN_TOKEN, Api
from tests.helpers import T0, mac

pytestmark = pytest.mark.e2e
WINDOW = wire.Window(start=T0, end=T0 + 60_000)


def graph(agent: str, switch: str, nodes: list[wire.Node], edges: list[wire.Edge]) -> bytes:
    g = wire.EdgeGraph(schema_version=1, agent_id=agent, seq=1, switch=wire.SwitchInfo(switch_id=switch),
                       window=WINDOW, nodes=nodes, edges=edges)  # fmt: skip
    return wire.encode(g.sealed())


def test_ip_only_flows_move_to_the_mac_that_held_the_ip(api: Api) -> None:
    server = graph("edge-sw1", "sw1", [wire.Device(mac=mac(50), ips=["10.1.0.50"])],
                   [wire.ConnectedTo(device=mac(50), interface="Gi1/0/50")])  # fmt: skip
    client = graph(
        "edge-sw2", "sw2", [wire.Device(mac=mac(60), ips=["10.2.0.60"]), wire.IpEndpoint(ip="10.1.0.50", local=True)],
        [wire.FlowsTo(src=mac(60), dst="10.1.0.50", protocol=6, port=445, bytes=7000, packets=9, flows=3,
                      first_seen=T0 + 1_000, last_seen=T0 + 9_000)],
    )  # fmt: skip
    with api.client(ADMIN_TOKEN) as c:
        assert c.post("/api/v1/graphs", content=client).status_code == 200
        assert c.post("/api/v1/graphs", content=server).status_code == 200
    q = '{ device(mac: "%s") { inbound { service bytes samplePeers } } }' % mac(50)  # noqa: UP031
    deadline = time.monotonic() + 30
    inbound: list[dict[str, object]] = []
    while time.monotonic() < deadline and not inbound:
        inbound = api.graphql(q)["data"]["device"]["inbound"]
        time.sleep(0.2)
    assert inbound == [{"service": "tcp/445", "bytes": 7000, "samplePeers": [mac(60)]}]
    ip_only = api.graphql("{ devices(first: 50, filter: {kind: IP}) { edges { node { uid } } } }")
    assert ip_only["data"]["devices"]["edges"] == []  # the IP-only endpoint is gone, its flows moved
    stats = api.graphql("{ stats { flows bytes } }")["data"]["stats"]
    assert stats == {"flows": 3, "bytes": 7000}  # moved, not copied: nothing counted twice
