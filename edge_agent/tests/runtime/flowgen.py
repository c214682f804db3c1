"""Synthetic FLOW_DTYPE records and a plain-Python reference aggregator to check the numpy one against."""

from __future__ import annotations

import ipaddress
import struct
from collections import defaultdict
from typing import Any

import numpy as np
import numpy.typing as npt

from clarion_edge import wire
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.service import FANIN_MIN, REGISTERED_SERVICES
from clarion_edge.sitenet import addr_bytes

SITE = ("10.0.0.0/8", "fd00::/8")
LOCAL_IPS = [f"10.1.0.{i}" for i in range(1, 13)] + ["fd00::1", "fd00::2", "fd00::a:3"]
REMOTE_IPS = ["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "2001:db8::ff", "8.8.8.8"]
PORTS = [22, 53, 80, 123, 443, 3306, 5432, 8080, 1024, 2000, 40000, 50000, 50001, 60000]
PROTOS = [6, 6, 6, 17, 17, 1, 58, 47]
#: Each local IP's MAC (a few IPs share MAC 0x0a0000000001: a host with two addresses).
MAC_OF = {ip: 0x0A0000000000 + 1 + (i % 10) for i, ip in enumerate(LOCAL_IPS)}
#: SGTs follow the host (its MAC), so every observation of a host agrees; "latest wins" is tested apart.
SGT_OF = {**{ip: (MAC_OF[ip] % 4) * 10 for ip in LOCAL_IPS}, **{ip: 7 * (i % 2) for i, ip in enumerate(REMOTE_IPS)}}


def random_records(n: int, seed: int, *, mac_share: float = 0.6) -> npt.NDArray[np.void]:
    rng = np.random.default_rng(seed)
    ips = LOCAL_IPS + REMOTE_IPS
    r = np.zeros(n, dtype=FLOW_DTYPE)
    src = rng.integers(0, len(ips), n)
    dst = rng.integers(0, len(ips), n)
    r["src_addr"] = [addr_bytes(ips[i]) for i in src]
    r["dst_addr"] = [addr_bytes(ips[i]) for i in dst]
    r["protocol"] = rng.choice(PROTOS, n)
    r["src_port"] = rng.choice(PORTS, n)
    r["dst_port"] = rng.choice(PORTS, n)
    r["tcp_flags"] = rng.choice([0x02, 0x12, 0x18, 0x1B, 0x10], n)
    r["bytes"] = rng.integers(40, 1_000_000, n)
    r["packets"] = rng.integers(1, 1000, n)
    r["first_ms"] = 1_700_000_000_000 + rng.integers(0, 60_000, n)
    r["last_ms"] = r["first_ms"] + rng.integers(0, 5_000, n)
    with_mac = rng.random(n) < mac_share
    r["src_mac"] = [MAC_OF.get(ips[i], 0x02BEEF000001) if m else 0 for i, m in zip(src, with_mac, strict=True)]
    r["dst_mac"] = [
        MAC_OF.get(ips[i], 0x02BEEF000001) if m else 0 for i, m in zip(dst, rng.random(n) < 0.3, strict=True)
    ]
    # 10.1.0.12 is claimed by two MACs (a moved host, a VRRP pair): its IP-only sightings stay IpEndpoints
    moved = (r["src_addr"] == np.array(addr_bytes("10.1.0.12"), dtype="V16")) & (r["src_mac"] != 0)
    r["src_mac"] = np.where(moved & (rng.random(n) < 0.5), 0x0A00000000FF, r["src_mac"])
    r["src_sgt"] = [SGT_OF[ips[i]] for i in src]
    r["dst_sgt"] = [SGT_OF[ips[i]] if k else 0 for i, k in zip(dst, rng.random(n) < 0.5, strict=True)]
    r["in_if"] = rng.choice([0, 3, 7], n)
    r["out_if"] = rng.choice([0, 0, 9], n)
    r["vlan"] = rng.choice([0, 10, 20], n)
    return r


def _ip(b: bytes) -> str:
    a = ipaddress.IPv6Address(b)
    return str(a.ipv4_mapped) if a.ipv4_mapped else str(a)


def _local(ip: str) -> bool:
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(p) for p in SITE)


def _mac(v: int) -> str:
    h = f"{v:012x}"
    return ":".join(h[i : i + 2] for i in range(0, 12, 2))


def _reverse(rows: list[dict[str, Any]]) -> list[bool]:
    """The documented service-side rules, one record at a time."""
    reg = {int(p) for p in REGISTERED_SERVICES}
    out: list[bool | None] = []
    undecided: list[int] = []
    for i, r in enumerate(rows):
        p, sp, dp = r["protocol"], r["src_port"], r["dst_port"]
        if p not in (6, 17, 33, 132):
            out.append((p == 1 and dp >> 8 == 0) or (p == 58 and dp >> 8 == 129))
        elif p == 6 and r["tcp_flags"] & 0x12 == 0x02:
            out.append(False)
        elif sp < 1024 or dp < 1024:
            out.append(sp < 1024 and (dp >= 1024 or sp < dp))
        else:
            out.append(None)
            undecided.append(i)
    count: dict[tuple[int, bytes, int], int] = defaultdict(int)
    for i in undecided:
        r = rows[i]
        count[(r["protocol"], r["src_addr"], r["src_port"])] += 1
        count[(r["protocol"], r["dst_addr"], r["dst_port"])] += 1
    for i in undecided:
        r = rows[i]
        cs = count[(r["protocol"], r["src_addr"], r["src_port"])]
        cd = count[(r["protocol"], r["dst_addr"], r["dst_port"])]
        s_l, d_l = cs >= FANIN_MIN and cs >= 2 * cd, cd >= FANIN_MIN and cd >= 2 * cs
        if s_l != d_l:
            out[i] = s_l
        elif (r["src_port"] in reg) != (r["dst_port"] in reg):
            out[i] = r["src_port"] in reg
        else:
            out[i] = r["src_port"] < r["dst_port"]
    return [bool(x) for x in out]


def reference(recs: npt.NDArray[np.void]) -> dict[str, Any]:
    """The window's graph content computed record by record (all records in one reduction chunk)."""
    names = FLOW_DTYPE.names or ()
    rows = [
        {name: (recs[name][i].tobytes() if name.endswith("addr") else int(recs[name][i])) for name in names}
        for i in range(len(recs))
    ]
    rev = _reverse(rows)
    mac_ips: dict[int, set[str]] = defaultdict(set)
    ends = []
    for r in rows:
        sides = []
        for side in ("src", "dst"):
            ip, mac = _ip(r[f"{side}_addr"]), r[f"{side}_mac"]
            dev = mac != 0 and _local(ip)
            if dev:
                mac_ips[mac].add(ip)
            sides.append((dev, mac, ip))
        ends.append(sides)
    ip_macs: dict[str, set[int]] = defaultdict(set)
    for mac, ips in mac_ips.items():
        for ip in ips:
            ip_macs[ip].add(mac)

    def key(dev: bool, mac: int, ip: str) -> str:
        if dev:
            return _mac(mac)
        if len(ip_macs.get(ip, ())) == 1:
            return _mac(next(iter(ip_macs[ip])))
        return ip

    edges: dict[tuple[str, str, int, int], list[int]] = {}
    sgt: dict[str, int] = {}
    conn: dict[str, tuple[str | None, int | None]] = {}
    for r, (s, d), rv in zip(rows, ends, rev, strict=True):
        ks, kd = key(*s), key(*d)
        p = r["protocol"]
        port = 0 if p not in (6, 17, 33, 132) else (r["src_port"] if rv else r["dst_port"])
        k = (kd, ks, p, port) if rv else (ks, kd, p, port)
        first, last = min(r["first_ms"], r["last_ms"]), r["last_ms"]
        acc = edges.setdefault(k, [0, 0, 0, first, last])
        acc[0] += r["bytes"]
        acc[1] += r["packets"]
        acc[2] += 1
        acc[3] = min(acc[3], first)
        acc[4] = max(acc[4], last)
        for k2, v in ((ks, r["src_sgt"]), (kd, r["dst_sgt"])):
            if v:
                sgt[k2] = v
        if s[0]:
            conn[_mac(s[1])] = (str(r["in_if"]) if r["in_if"] else None, (r["vlan"] & 0xFFF) or None)
        if d[0] and r["out_if"]:
            conn[_mac(d[1])] = (str(r["out_if"]), (r["vlan"] & 0xFFF) or None)
    endpoints = {k for e in edges for k in e[:2]}
    nodes: dict[str, Any] = {}
    for k in endpoints:
        if ":" in k and len(k) == 17 and k.count(":") == 5 and all(len(x) == 2 for x in k.split(":")):
            ips = sorted(mac_ips[int(k.replace(":", ""), 16)], key=lambda t: int(ipaddress.IPv6Address(
                addr_bytes(t))))[:16]  # fmt: skip
            nodes[k] = wire.Device(mac=k, ips=ips, sgt=sgt.get(k), local=True)
        else:
            nodes[k] = wire.IpEndpoint(ip=k, sgt=sgt.get(k), local=_local(k))
    return {
        "edges": {k: tuple(v) for k, v in edges.items()},
        "nodes": nodes,
        "services": {(k[2], k[3]) for k in edges},
        "conn": {k: v for k, v in conn.items() if k in endpoints},
    }


def summarise(graphs: list[wire.EdgeGraph]) -> dict[str, Any]:
    """The same shape as :func:`reference`, from emitted EdgeGraphs (edges must not repeat across graphs)."""
    edges: dict[tuple[str, str, int, int], tuple[int, ...]] = {}
    nodes: dict[str, Any] = {}
    services = set()
    conn = {}
    for g in graphs:
        assert wire.decode(wire.encode(g.sealed())) == g.sealed()  # the full schema, as the server checks it
        for n in g.nodes:
            if isinstance(n, wire.Service):
                services.add((n.protocol, n.port))
            else:
                assert nodes.setdefault(n.key, n) == n
        for e in g.edges:
            if isinstance(e, wire.FlowsTo):
                k = (e.src, e.dst, e.protocol, e.port)
                assert k not in edges, f"edge {k} emitted twice"
                edges[k] = (e.bytes, e.packets, e.flows, e.first_seen, e.last_seen)
            else:
                conn[e.device] = (e.interface, e.vlan)
    return {"edges": edges, "nodes": nodes, "services": services, "conn": conn}


V5_HEADER = struct.Struct("!HHIIIIBBH")
V5_RECORD = struct.Struct("!4s4s4sHHIIIIHHBBBBHHBBH")


def v5_datagram(
    flows: list[tuple[str, str, int, int, int, int, int]], *, seq: int = 0, unix_secs: int = 1_700_000_000
) -> bytes:
    """A NetFlow v5 datagram of (src, dst, sport, dport, proto, packets, bytes) flows (at most 30)."""
    assert len(flows) <= 30
    uptime = 100_000
    head = V5_HEADER.pack(5, len(flows), uptime, unix_secs, 0, seq, 0, 0, 0)
    body = b"".join(
        V5_RECORD.pack(
            ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed, b"\0\0\0\0", 1, 2,
            pkts, byts, uptime - 5_000, uptime - 1_000, sport, dport, 0, 0x1B, proto, 0, 0, 0, 24, 24, 0,
        )
        for src, dst, sport, dport, proto, pkts, byts in flows
    )  # fmt: skip
    return head + body
