"""IP→MAC bindings that edge agents observed (a Device with its IPs in one window) → ``IpBinding``.

Agents see a MAC with its IPs in NetFlow v9/IPFIX or ARP; that is evidence as good as a session for the
correlation of IP-only flow endpoints. The flow merger calls :func:`record_agent_bindings` after it applied a
batch, then :func:`clarion.identity.correlate.correlate` for the IPs involved (:func:`after_flow_batch` does both).
"""

from __future__ import annotations

import logging
from typing import Any

from clarion.identity.correlate import CorrelationResult, correlate
from clarion.identity.sessions import STATEMENT
from clarion.store.port import GraphStore
from clarion_edge import wire

log = logging.getLogger(__name__)

_EMPTY: dict[str, list[Any]] = {"users": [], "sgts": [], "switches": [], "sessions": [], "ends": []}


def bindings_from_graph(graph: wire.EdgeGraph) -> list[list[Any]]:
    """One binding row per IP held by exactly one MAC in this window (an IP claimed by two MACs is skipped)."""
    holders: dict[str, set[str]] = {}
    for node in graph.nodes:
        if isinstance(node, wire.Device):
            for ip in node.ips:
                holders.setdefault(ip, set()).add(node.mac)
    rows = []
    for ip, macs in sorted(holders.items()):
        if len(macs) != 1:
            log.info("agent %s: IP %s seen with %d MACs in one window; no binding recorded", graph.agent_id, ip,
                     len(macs))  # fmt: skip
            continue
        rows.append([ip, next(iter(macs)), graph.window.start, graph.window.end, "agent"])
    return rows


def record_agent_bindings(store: GraphStore, graph: wire.EdgeGraph) -> list[str]:
    """Record the window's IP→MAC bindings (devices must exist: call after the batch merged); the IPs done."""
    rows = bindings_from_graph(graph)
    if rows:
        store.write(STATEMENT, {**_EMPTY, "bindings": rows})
    return [str(r[0]) for r in rows]


def after_flow_batch(store: GraphStore, graph: wire.EdgeGraph) -> CorrelationResult:
    """The flow merger's hook, after a batch was applied: record its IP→MAC bindings, then attach the IP-only
    endpoints of this batch (and of the IPs it bound) to the devices that held those IPs at the flows' time."""
    bound = record_agent_bindings(store, graph)
    ips = {n.ip for n in graph.nodes if isinstance(n, wire.IpEndpoint)} | set(bound)
    return correlate(store, ips) if ips else CorrelationResult()
