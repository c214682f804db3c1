"""Attach IP-only flow endpoints to the MAC device that held the IP at the flow's time.

The flow merger creates ``Device {kind: 'ip'}`` nodes for endpoints it saw only by IP. Identity (sessions,
agents' ARP/IPFIX MACs) records time-bounded IP→MAC bindings (``IpBinding``). A FLOWS_TO of an IP node
moves to the MAC device whose binding covers the whole ``first_seen..last_seen`` of that edge; an edge that
no binding covers, or that two bindings cover (the IP changed hands inside it), stays where it is. An IP node
left without flows is deleted. Running it again finds nothing to move: it is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clarion.store.port import GraphStore

#: A full pass asks about this many IP endpoints per read.
IP_CHUNK = 2_000
#: An edge between two IP-only endpoints moves in two passes (one per end); more is never needed.
MAX_PASSES = 4


@dataclass(slots=True)
class CorrelationResult:
    moved: int = 0
    ambiguous: int = 0
    uncovered: int = 0
    passes: int = 0
    seconds: float = 0.0
    devices: set[str] = field(default_factory=set)


def holder(bindings: Sequence[Sequence[Any]], first_seen: int, last_seen: int, slack_ms: int = 0) -> str | bool | None:
    """The MAC whose binding ``[since, until]`` (open: no until) covers the span; False when several do."""
    macs = {
        str(mac)
        for mac, since, until in bindings
        if since is not None and since - slack_ms <= first_seen and (until is None or last_seen <= until + slack_ms)
    }
    if len(macs) > 1:
        return False
    return next(iter(macs), None)


def plan(rows: Iterable[dict[str, Any]], slack_ms: int, result: CorrelationResult) -> list[dict[str, list[Any]]]:
    """Group moves into rounds so each target FLOWS_TO key (and each source edge) occurs once per statement."""
    rounds: list[dict[str, list[Any]]] = []
    used: list[set[tuple[Any, ...]]] = []
    seen_edges: set[tuple[Any, ...]] = set()
    for r in rows:
        ip, peer, outbound = str(r["ip"]), str(r["peer"]), bool(r["outbound"])
        if peer == ip:
            continue
        src, dst = (ip, peer) if outbound else (peer, ip)
        edge = (src, dst, r["protocol"], r["port"], r["day"])
        if edge in seen_edges:  # an edge between two IP endpoints: move one end now, the other next pass
            continue
        mac = holder(r["bindings"], int(r["first_seen"]), int(r["last_seen"]), slack_ms)
        if mac is False:
            result.ambiguous += 1
            continue
        if mac is None:
            result.uncovered += 1
            continue
        assert isinstance(mac, str)
        if mac == peer:
            continue
        seen_edges.add(edge)
        target = (mac, peer, outbound, r["protocol"], r["port"], r["day"])
        k = next((i for i, u in enumerate(used) if target not in u), len(used))
        if k == len(used):
            used.append(set())
            rounds.append({"outbound": [], "inbound": [], "ips": []})
        used[k].add(target)
        row = {"ip": ip, "peer": peer, "mac": mac, "protocol": r["protocol"], "port": r["port"], "day": r["day"]}
        rounds[k]["outbound" if outbound else "inbound"].append(row)
        if ip not in rounds[k]["ips"]:
            rounds[k]["ips"].append(ip)
        result.devices.add(mac)
    return rounds


def correlate(store: GraphStore, ips: Iterable[str] | None = None, *, slack_ms: int = 0) -> CorrelationResult:
    """Move FLOWS_TO of IP-only endpoints onto the bound MAC devices; ``ips`` limits the work (None: all).

    Call it after an identity merge (the IPs whose bindings changed) and after a flow merge (the IP-only
    endpoints it created). ``slack_ms`` tolerates clock skew between the flow exporter and ISE.
    """
    t0 = time.perf_counter()
    result = CorrelationResult()
    if ips is None:
        scope = sorted({str(r["ip"]) for r in store.read("query/identity_bound_ip_endpoints", {})})
    else:
        scope = sorted(set(ips))
    for _ in range(MAX_PASSES):
        rows: list[dict[str, Any]] = []
        for i in range(0, len(scope), IP_CHUNK):
            rows += store.read("query/identity_correlation_candidates", {"ips": scope[i : i + IP_CHUNK]})
        pass_result = CorrelationResult()
        rounds = plan(rows, slack_ms, pass_result)
        result.ambiguous, result.uncovered = pass_result.ambiguous, pass_result.uncovered
        if not rounds:
            break
        result.passes += 1
        for rnd in rounds:
            store.write("merge/identity_correlate", rnd)
            result.moved += len(rnd["outbound"]) + len(rnd["inbound"])
        result.devices |= pass_result.devices
    result.seconds = time.perf_counter() - t0
    return result
