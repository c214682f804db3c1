"""EdgeGraph → statement parameters: pure, pre-aggregated so each key appears once per batch.

FalkorDB 4.16 crashes when ``MERGE ... ON CREATE ... ON MATCH`` meets the same relationship
key twice in one UNWIND, so uniqueness here is a correctness requirement, not only speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clarion_edge import wire


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
    devices: list[dict[str, Any]] = []
    sgts: list[dict[str, Any]] = []
    services: dict[str, dict[str, Any]] = {}
    for node in g.nodes:
        if isinstance(node, wire.Device):
            devices.append(
                {"uid": node.mac, "kind": "mac", "mac": node.mac, "ip": node.ips[0] if node.ips else None,
                 "local": node.local}
            )  # fmt: skip
            if node.sgt is not None:
                sgts.append({"uid": node.mac, "sgt": node.sgt})
        elif isinstance(node, wire.IpEndpoint):
            devices.append({"uid": node.ip, "kind": "ip", "mac": None, "ip": node.ip, "local": node.local})
            if node.sgt is not None:
                sgts.append({"uid": node.ip, "sgt": node.sgt})
        else:
            key = service_key(node.protocol, node.port)
            services[key] = {"key": key, "protocol": node.protocol, "port": node.port}

    flows: dict[tuple[str, str, int, int], dict[str, Any]] = {}
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
                flows[k] = {
                    "src": edge.src, "dst": edge.dst, "protocol": edge.protocol, "port": edge.port,
                    "bytes": edge.bytes, "packets": edge.packets, "flows": edge.flows,
                    "first_seen": edge.first_seen, "last_seen": edge.last_seen,
                }  # fmt: skip
            else:
                row["bytes"] += edge.bytes
                row["packets"] += edge.packets
                row["flows"] += edge.flows
                row["first_seen"] = min(row["first_seen"], edge.first_seen)
                row["last_seen"] = max(row["last_seen"], edge.last_seen)
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
