"""Offline sources of export datagrams: classic pcap, pcapng, and raw captures (4-byte length + bytes).

Every UDP datagram over IPv4 or IPv6 is yielded, whatever its port, with the packet's source
as the exporter, so a capture taken at a collector replays exactly as the listener would see it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: Largest packet record accepted; anything bigger means a corrupt file, not a jumbo frame.
MAX_RECORD = 256 * 1024

_LINK_NULL, _LINK_ETHERNET, _LINK_RAW, _LINK_SLL, _LINK_IPV4, _LINK_IPV6, _LINK_SLL2 = 0, 1, 101, 113, 228, 229, 276
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class CaptureError(ValueError):
    """The file is not a capture this reader understands, or is corrupt at a given offset."""


Datagram = tuple[bytes, str, int]  # (UDP payload, exporter "ip:port", capture time in epoch ms)


def read_datagrams(path: Path) -> Iterator[Datagram]:
    """UDP payloads of a pcap / pcapng file, or the records of a raw capture (exporter "raw", time 0)."""
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        if head in _PCAP_MAGICS:
            yield from _pcap(f, path)
        elif head == _PCAPNG_SHB:
            yield from _pcapng(f, path)
        else:
            yield from _raw(f, path)


def write_raw(path: Path, datagrams: list[bytes]) -> None:
    """Store datagrams as a raw capture (the format ``read_datagrams`` and the benchmark replay)."""
    with path.open("wb") as f:
        for d in datagrams:
            f.write(len(d).to_bytes(4, "big") + d)


def _raw(f: BinaryIO, path: Path) -> Iterator[Datagram]:
    offset = 0
    while True:
        head = f.read(4)
        if not head:
            return
        length = int.from_bytes(head, "big")
        if len(head) < 4 or length > 65535:
            raise CaptureError(
                f"{path}: not a pcap, pcapng or raw capture (raw records are a 4-byte big-endian length "
                f"<= 65535 then the datagram; found {head.hex()} at byte {offset})"
            )
        data = f.read(length)
        if len(data) < length:
            raise CaptureError(f"{path}: raw record at byte {offset} is cut short ({len(data)} of {length} bytes)")
        offset += 4 + length
        yield data, "raw", 0


def _pcap(f: BinaryIO, path: Path) -> Iterator[Datagram]:
    header = f.read(24)
    if len(header) < 24:
        raise CaptureError(f"{path}: pcap header is cut short")
    endian, per_ms = _PCAP_MAGICS[header[:4]]
    linktype = struct.unpack(endian + "I", header[20:24])[0] & 0xFFFF
    rec = struct.Struct(endian + "IIII")
    offset = 24
    while True:
        head = f.read(16)
        if not head:
            return
        if len(head) < 16:
            raise CaptureError(f"{path}: packet header at byte {offset} is cut short")
        secs, frac, caplen, _ = rec.unpack(head)
        if caplen > MAX_RECORD:
            raise CaptureError(f"{path}: packet at byte {offset} claims {caplen} bytes (limit {MAX_RECORD})")
        frame = f.read(caplen)
        if len(frame) < caplen:
            raise CaptureError(f"{path}: packet at byte {offset} is cut short")
        offset += 16 + caplen
        got = udp_payload(frame, linktype)
        if got is not None:
            yield got[0], got[1], secs * 1000 + frac // per_ms


def _pcapng(f: BinaryIO, path: Path) -> Iterator[Datagram]:
    endian = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per timestamp unit)
    offset = 0
    while True:
        head = f.read(8)
        if not head:
            return
        if len(head) < 8:
            raise CaptureError(f"{path}: pcapng block at byte {offset} is cut short")
        if head[:4] == _PCAPNG_SHB:
            bom = f.read(4)
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise CaptureError(f"{path}: pcapng section at byte {offset} has no byte-order magic")
            interfaces = []
            body_start = 4
        else:
            body_start = 0
        block_type, length = struct.unpack(endian + "II", head)
        if length < 12 or length % 4 or length > MAX_RECORD:
            raise CaptureError(f"{path}: pcapng block at byte {offset} has impossible length {length}")
        body = (bom if body_start else b"") + f.read(length - 8 - body_start)
        if len(body) < length - 8:
            raise CaptureError(f"{path}: pcapng block at byte {offset} is cut short")
        body = body[:-4]  # trailing copy of the length
        if block_type == 1 and len(body) >= 8:  # interface description
            interfaces.append((struct.unpack_from(endian + "H", body)[0], _tsresol(body[8:], endian)))
        elif block_type in (6, 3) and interfaces:  # enhanced / simple packet
            if block_type == 6 and len(body) >= 20:
                iface, ts_hi, ts_lo, caplen, _ = struct.unpack_from(endian + "IIIII", body)
                frame = body[20 : 20 + caplen]
                if iface >= len(interfaces):
                    raise CaptureError(f"{path}: packet at byte {offset} names unknown interface {iface}")
                linktype, unit = interfaces[iface]
                ts_ms = int(((ts_hi << 32) | ts_lo) * unit * 1000)
            else:
                frame, (linktype, _), ts_ms = body[4:], interfaces[0], 0
            got = udp_payload(frame, linktype)
            if got is not None:
                yield got[0], got[1], ts_ms
        offset += length


def _tsresol(options: bytes, endian: str) -> float:
    off = 0
    while off + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[off + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        off += 4 + length + (-length % 4)
    return 1e-6


def udp_payload(frame: bytes, linktype: int) -> tuple[bytes, str] | None:
    """(payload, "src-ip:port") of a UDP packet in a link-layer frame; None for anything else."""
    if linktype == _LINK_ETHERNET:
        off, ethertype = 14, int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            ethertype = int.from_bytes(frame[off + 2 : off + 4], "big")
            off += 4
    elif linktype == _LINK_SLL:
        off, ethertype = 16, int.from_bytes(frame[14:16], "big") if len(frame) >= 16 else 0
    elif linktype == _LINK_SLL2:
        off, ethertype = 20, int.from_bytes(frame[0:2], "big") if len(frame) >= 20 else 0
    elif linktype == _LINK_NULL:
        family = int.from_bytes(frame[:4], "little") if len(frame) >= 4 else 0
        off, ethertype = 4, 0x0800 if family == 2 else (0x86DD if family in (10, 24, 28, 30) else 0)
    elif linktype in (_LINK_RAW, _LINK_IPV4, _LINK_IPV6, 12):
        off, ethertype = 0, 0x0800 if frame[:1] and frame[0] >> 4 == 4 else 0x86DD
    else:
        return None
    if ethertype == 0x0800:
        return _ipv4(frame, off)
    if ethertype == 0x86DD:
        return _ipv6(frame, off)
    return None


def _ipv4(frame: bytes, off: int) -> tuple[bytes, str] | None:
    if len(frame) < off + 20 or frame[off] >> 4 != 4 or frame[off + 9] != 17:
        return None
    ihl = (frame[off] & 0x0F) * 4
    if int.from_bytes(frame[off + 6 : off + 8], "big") & 0x3FFF:
        return None  # a fragment: exporters' datagrams fit one packet; reassembly is not attempted
    total = int.from_bytes(frame[off + 2 : off + 4], "big")
    src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
    return _udp(frame[off + ihl : off + total] if total >= ihl else b"", src)


def _ipv6(frame: bytes, off: int) -> tuple[bytes, str] | None:
    if len(frame) < off + 40 or frame[off] >> 4 != 6:
        return None
    nxt = frame[off + 6]
    end = off + 40 + int.from_bytes(frame[off + 4 : off + 6], "big")
    src = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
    pos = off + 40
    while nxt in (0, 43, 60) and len(frame) >= pos + 8:  # hop-by-hop, routing, destination options
        nxt, pos = frame[pos], pos + 8 + frame[pos + 1] * 8
    if nxt != 17:
        return None
    return _udp(frame[pos:end], f"[{src}]")


def _udp(segment: bytes, src: str) -> tuple[bytes, str] | None:
    if len(segment) < 8:
        return None
    length = int.from_bytes(segment[4:6], "big")
    payload = segment[8:length] if 8 <= length <= len(segment) else segment[8:]
    return payload, f"{src}:{int.from_bytes(segment[0:2], 'big')}"
