"""Byte builders for NetFlow v5 / v9 / IPFIX datagrams used by the unit and fuzz tests.

They write the wire format by hand with ``struct`` (no decoder code), so a test compares the
decoder against an independent encoding.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

VARLEN = 0xFFFF


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def mapped(text: str) -> bytes:
    """The 16-byte form FLOW_DTYPE stores: IPv4-mapped for IPv4."""
    addr = ipaddress.ip_address(text)
    return (b"\x00" * 10 + b"\xff\xff" + addr.packed) if addr.version == 4 else addr.packed


def v5_record(
    src: str, dst: str, *, sport: int = 1234, dport: int = 80, proto: int = 6, packets: int = 10,
    octets: int = 1000, first: int = 5000, last: int = 9000, flags: int = 0x1B, in_if: int = 3, out_if: int = 4,
) -> bytes:  # fmt: skip
    return struct.pack(
        "!4s4s4sHHIIIIHHBBBBHHBBH", ip(src), ip(dst), bytes(4), in_if, out_if, packets, octets, first, last,
        sport, dport, 0, flags, proto, 0, 0, 0, 24, 24, 0,
    )  # fmt: skip


def v5(records: Sequence[bytes], *, uptime: int = 10_000, secs: int = 1_700_000_000, nsecs: int = 500_000_000,
       sampling: int = 0, count: int | None = None) -> bytes:  # fmt: skip
    n = len(records) if count is None else count
    return struct.pack("!HHIIIIBBH", 5, n, uptime, secs, nsecs, 1, 0, 0, sampling) + b"".join(records)


def pad4(body: bytes) -> bytes:
    return body + bytes(-len(body) % 4)


def flowset(set_id: int, body: bytes, *, pad: bool = True) -> bytes:
    body = pad4(body) if pad else body
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def v9_template(tid: int, fields: Sequence[tuple[int, int]]) -> bytes:
    return struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", t, ln) for t, ln in fields)


def v9_options_template(tid: int, scope: Sequence[tuple[int, int]], options: Sequence[tuple[int, int]]) -> bytes:
    enc = lambda fs: b"".join(struct.pack("!HH", t, ln) for t, ln in fs)  # noqa: E731
    return struct.pack("!HHH", tid, 4 * len(scope), 4 * len(options)) + enc(scope) + enc(options)


def v9(sets: Sequence[bytes], *, uptime: int = 100_000, secs: int = 1_700_000_000, source_id: int = 0) -> bytes:
    return struct.pack("!HHIIII", 9, len(sets), uptime, secs, 7, source_id) + b"".join(sets)


def ipfix_field(ie: int, length: int, pen: int = 0) -> bytes:
    if pen:
        return struct.pack("!HHI", ie | 0x8000, length, pen)
    return struct.pack("!HH", ie, length)


def ipfix_template(tid: int, fields: Sequence[tuple[int, int] | tuple[int, int, int]]) -> bytes:
    return struct.pack("!HH", tid, len(fields)) + b"".join(ipfix_field(*f) for f in fields)


def ipfix_options_template(
    tid: int, scope_count: int, fields: Sequence[tuple[int, int] | tuple[int, int, int]]
) -> bytes:
    return struct.pack("!HHH", tid, len(fields), scope_count) + b"".join(ipfix_field(*f) for f in fields)


def ipfix(sets: Sequence[bytes], *, export: int = 1_700_000_000, domain: int = 0, length: int | None = None) -> bytes:
    body = b"".join(sets)
    n = 16 + len(body) if length is None else length
    return struct.pack("!HHIII", 10, n, export, 1, domain) + body


def varlen(value: bytes) -> bytes:
    """IPFIX variable-length encoding: 1-byte length, or 255 + 2-byte length."""
    if len(value) < 255:
        return bytes([len(value)]) + value
    return b"\xff" + struct.pack("!H", len(value)) + value


def u(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")
