"""Generate pcap files of known flows (the ground truth for exporter oracle tests and benchmarks).

Packets are built as bytes once per flow shape and written with a raw pcap writer: 500k flows
take seconds, not the minutes scapy's per-packet objects would.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
_REC = struct.Struct("<IIII")


@dataclass(frozen=True, slots=True)
class GenFlow:
    """One unidirectional flow: ``packets`` packets of ``ip_len`` bytes each, ``gap_us`` apart."""

    src: bytes  # 4 or 16 bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    packets: int
    ip_len: int
    start_us: int
    gap_us: int

    @property
    def bytes(self) -> int:
        return self.packets * self.ip_len


def make_flows(n: int, seed: int = 1, *, v6_share: float = 0.1, icmp_share: float = 0.05) -> list[GenFlow]:
    """``n`` flows with distinct 5-tuples over roughly a minute starting at 2024-01-01T00:00:00Z."""
    rng = random.Random(seed)
    base_us = 1_704_067_200 * 1_000_000
    flows = []
    for i in range(n):
        v6 = rng.random() < v6_share
        if v6:
            src = b"\xfd\x00" + bytes(10) + i.to_bytes(4, "big")
            dst = b"\xfd\x01" + bytes(13) + bytes([rng.randrange(1, 250)])
        else:
            src = bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF])
            dst = bytes([172, 16, rng.randrange(0, 4), rng.randrange(1, 250)])
        r = rng.random()
        if r < icmp_share:
            proto, sport, dport = (ICMP6 if v6 else ICMP), 0, 0
        else:
            proto = TCP if r < 0.7 else UDP
            sport = rng.randrange(1024, 65535)
            dport = rng.choice((22, 53, 80, 443, 445, 3389, 8080, 123, 389, 636))
        payload = rng.randrange(0, 1200)
        l4 = 20 if proto == TCP else 8
        ip_len = (40 if v6 else 20) + l4 + payload
        flows.append(
            GenFlow(src, dst, proto, sport, dport, rng.randrange(1, 6), ip_len,
                    base_us + rng.randrange(0, 60_000_000), rng.randrange(1000, 500_000))
        )  # fmt: skip
    return flows


def _packet(f: GenFlow, first: bool) -> bytes:
    v6 = len(f.src) == 16
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + (b"\x86\xdd" if v6 else b"\x08\x00")
    if f.proto == TCP:
        l4 = struct.pack("!HHIIBBHHH", f.sport, f.dport, 1, 0, 5 << 4, 0x02 if first else 0x18, 65535, 0, 0)
    elif f.proto == UDP:
        l4 = struct.pack("!HHHH", f.sport, f.dport, f.ip_len - (40 if v6 else 20), 0)
    else:
        l4 = struct.pack("!BBHI", 128 if v6 else 8, 0, 0, 0)  # echo request
    body = l4 + bytes(f.ip_len - (40 if v6 else 20) - len(l4))
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(body), f.proto, 64) + f.src + f.dst
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, f.ip_len, 0, 0, 64, f.proto, 0) + f.src + f.dst
    return eth + ip + body


def write_pcap(path: Path, flows: list[GenFlow]) -> None:
    """All packets of ``flows`` in time order as a classic little-endian pcap."""
    events = []
    for idx, f in enumerate(flows):
        for k in range(f.packets):
            events.append((f.start_us + k * f.gap_us, idx, k))
    events.sort()
    cache: dict[tuple[int, bool], bytes] = {}
    with path.open("wb") as out:
        out.write(_PCAP_HEADER)
        for ts, idx, k in events:
            key = (idx, k == 0)
            pkt = cache.pop(key, None) or _packet(flows[idx], k == 0)
            if k == 0 and flows[idx].packets > 1:
                cache[(idx, False)] = _packet(flows[idx], False)
            elif k > 0 and k < flows[idx].packets - 1:
                cache[key] = pkt
            out.write(_REC.pack(ts // 1_000_000, ts % 1_000_000, len(pkt), len(pkt)))
            out.write(pkt)


def icmp_port(f: GenFlow) -> int:
    """Exporters report ICMP type and code in the destination port: type * 256 + code (echo request here)."""
    return (128 if len(f.src) == 16 else 8) << 8


def truth(flows: list[GenFlow]) -> dict[str, object]:
    """Totals and per-(protocol, destination port) sums that a lossless exporter + collector must reproduce."""
    per: Counter[tuple[int, int]] = Counter()
    per_bytes: Counter[tuple[int, int]] = Counter()
    for f in flows:
        port = icmp_port(f) if f.proto in (ICMP, ICMP6) else f.dport
        per[(f.proto, port)] += f.packets
        per_bytes[(f.proto, port)] += f.bytes
    return {
        "flows": len(flows),
        "packets": sum(f.packets for f in flows),
        "bytes": sum(f.bytes for f in flows),
        "per_port_packets": dict(per),
        "per_port_bytes": dict(per_bytes),
    }


def _udp_frame(payload: bytes, src: str, dst: str, sport: int, dport: int) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if s.version == 6:
        ip = struct.pack("!IHBB", 6 << 28, len(udp), UDP, 64) + s.packed + d.packed
        return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip + udp
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, UDP, 0) + s.packed + d.packed
    return b"\x02" * 6 + b"\x04" * 6 + b"\x81\x00\x00\x0a\x08\x00" + ip + udp  # VLAN-tagged


def write_udp_pcap(path: Path, payloads: list[bytes], src: str = "192.0.2.10", sport: int = 40000) -> None:
    """Export datagrams as UDP packets to port 2055 in a classic pcap (as captured at a collector)."""
    with path.open("wb") as out:
        out.write(_PCAP_HEADER)
        for i, p in enumerate(payloads):
            frame = _udp_frame(p, src, "2001:db8::1" if ":" in src else "192.0.2.1", sport, 2055)
            out.write(_REC.pack(1_700_000_000 + i, 0, len(frame), len(frame)) + frame)


def write_udp_pcapng(path: Path, payloads: list[bytes], src: str = "192.0.2.10", sport: int = 40000) -> None:
    """The same as ``write_udp_pcap`` in pcapng (section header, one Ethernet interface, enhanced packets)."""

    def block(kind: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    with path.open("wb") as out:
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.write(block(1, struct.pack("<HHI", 1, 0, 65535)))
        for i, p in enumerate(payloads):
            frame = _udp_frame(p, src, "2001:db8::1" if ":" in src else "192.0.2.1", sport, 2055)
            ts = (1_700_000_000 + i) * 1_000_000
            out.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame))
