"""EdgeGraph → statement parameters: pure, pre-aggregated so each key appears once per batch.

FalkorDB 4.16 crashes when ``MERGE ... ON CREATE ... ON MATCH`` meets the same relationship
key twice in one UNWIND, so uniqueness here is a correctness requirement, not only speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clarion_edge import wire

#: The two large parameters travel as rows of lists, not maps: FalkorDB's client renders
#: parameters into the query text, and lists of lists render in C (json) ~4x faster.
DEVICE_COLUMNS = ("uid", "kind", "mac", "ip", "local")
FLOW_COLUMNS = ("src", "dst", "protocol", "port", "bytes", "packets", "flows", "first_seen", "last_seen")


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    agent_id: str
    seq: int
    digest: str
    n_nodes: int
    n_edges: int
    n_flows_rows: int
    bytes: int
    packets: int
    flows: int
    params: dict[str, Any]


def prepare(g: wire.EdgeGraph, applied_at_ms: int) -> PreparedBatch:
    digest = g.digest or g.content_digest()
    devices: list[list[Any]] = []  # DEVICE_COLUMNS
    sgts: list[dict[str, Any]] = []
    services: dict[str, dict[str, Any]] = {}
    for node in g.nodes:
        if isinstance(node, wire.Device):
            devices.append([node.mac, "mac", node.mac, node.ips[0] if node.ips else None, node.local])
            if node.sgt is not None:
                sgts.append({"uid": node.mac, "sgt": node.sgt})
        elif isinstance(node, wire.IpEndpoint):
            devices.append([node.ip, "ip", None, node.ip, node.local])
            if node.sgt is not None:
                sgts.append({"uid": node.ip, "sgt": node.sgt})
        else:
            key = service_key(node.protocol, node.port)
            services[key] = {"key": key, "protocol": node.protocol, "port": node.port}

    flows: dict[tuple[str, str, int, int], list[Any]] = {}  # FLOW_COLUMNS
    attach: dict[str, dict[str, Any]] = {}
    total_bytes = total_packets = total_flows = 0
    for edge in g.edges:
        if isinstance(edge, wire.FlowsTo):
            total_bytes += edge.bytes
            total_packets += edge.packets
            total_flows += edge.flows
            k = (edge.src, edge.dst, edge.protocol, edge.port)
            row = flows.get(k)
            if row is None:
                flows[k] = [
                    edge.src, edge.dst, edge.protocol, edge.port, edge.bytes, edge.packets, edge.flows,
                    edge.first_seen, edge.last_seen,
                ]  # fmt: skip
            else:
                row[4] += edge.bytes
                row[5] += edge.packets
                row[6] += edge.flows
                row[7] = min(row[7], edge.first_seen)
                row[8] = max(row[8], edge.last_seen)
            key = service_key(edge.protocol, edge.port)
            services.setdefault(key, {"key": key, "protocol": edge.protocol, "port": edge.port})
        else:
            attach[edge.device] = {"uid": edge.device, "interface": edge.interface, "vlan": edge.vlan}

    params = {
        "agent_id": g.agent_id,
        "seq": g.seq,
        "digest": digest,
        "switch_id": g.switch.switch_id,
        "switch_name": g.switch.name,
        "switch_ip": g.switch.mgmt_ip,
        "window_start": g.window.start,
        "window_end": g.window.end,
        "day": day_of(g.window.start),
        "devices": devices,
        "sgts": sgts,
        "attach": list(attach.values()),
        "services": list(services.values()),
        "flows": list(flows.values()),
        "applied_at": applied_at_ms,
        "n_nodes": len(g.nodes),
        "n_edges": len(g.edges),
    }
    return PreparedBatch(
        agent_id=g.agent_id, seq=g.seq, digest=digest, n_nodes=len(g.nodes), n_edges=len(g.edges),
        n_flows_rows=len(flows), bytes=total_bytes, packets=total_packets, flows=total_flows, params=params,
    )  # fmt: skip


def service_key(protocol: int, port: int) -> str:
    """``tcp/443``, ``udp/53``, ``icmp/0``, ``proto-47/0``: the Service node key."""
    return f"{PROTOCOL_NAMES.get(protocol, f'proto-{protocol}')}/{port}"


def day_of(epoch_ms: int) -> int:
    """UTC day number (days since 1970-01-01): the FLOWS_TO time bucket."""
    return epoch_ms // wire.DAY_MS


PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}
