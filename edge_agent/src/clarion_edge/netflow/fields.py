"""Template compilation: field specifiers -> a numpy record dtype and a vectorised converter to ``FLOW_DTYPE``.

A template is compiled once (and cached by its field list), so decoding a data set is one
``np.frombuffer`` plus a handful of whole-column numpy operations, not a loop per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clarion_edge.netflow.records import FLOW_DTYPE

#: IPFIX marks a variable-length field with this length (RFC 7011 §7).
VARLEN = 0xFFFF
#: Cisco's IANA private enterprise number (ciscoSystems).
PEN_CISCO = 9

# Information element ids (NetFlow v9 field types and IANA IPFIX ids share the range below 128).
OCTETS, PACKETS, PROTOCOL, TCP_FLAGS, SRC_PORT, SRC_V4, IN_IF = 1, 2, 4, 6, 7, 8, 10
DST_PORT, DST_V4, OUT_IF = 11, 12, 14
LAST_SYSUP, FIRST_SYSUP, POST_OCTETS, POST_PACKETS, SRC_V6, DST_V6 = 21, 22, 23, 24, 27, 28
ICMP_V4, SAMPLING_INTERVAL, SAMPLER_ID, SAMPLER_RANDOM_INTERVAL = 32, 34, 48, 50
SRC_MAC, POST_DST_MAC, VLAN, POST_VLAN, DST_MAC, POST_SRC_MAC = 56, 57, 58, 59, 80, 81
OCTETS_TOTAL, PACKETS_TOTAL, ICMP_V6 = 85, 86, 139
START_S, END_S, START_MS, END_MS, START_US, END_US, START_NS, END_NS = 150, 151, 152, 153, 154, 155, 156, 157
START_DELTA_US, END_DELTA_US, SYS_INIT_MS = 158, 159, 160
UDP_SRC, UDP_DST, TCP_SRC, TCP_DST = 180, 181, 182, 183
SELECTOR_ID, SAMPLING_PACKET_INTERVAL, SAMPLING_PACKET_SPACE, SAMPLING_SIZE, SAMPLING_POPULATION = (
    302,
    305,
    306,
    309,
    310,
)
#: Cisco TrustSec tags: NetFlow v9 field types 34000/34001 (CTS_SRC_GROUP_TAG / CTS_DST_GROUP_TAG,
#: Wireshark's "cts_sgt_source_tag"/"cts_sgt_destination_tag"). In IPFIX a type above 32767 has the
#: enterprise bit set, so the same numbers arrive as element 1232/1233 with Cisco's PEN.
CTS_SGT_SRC_V9, CTS_SGT_DST_V9 = 34000, 34001
CTS_SGT_SRC_IPFIX, CTS_SGT_DST_IPFIX = CTS_SGT_SRC_V9 & 0x7FFF, CTS_SGT_DST_V9 & 0x7FFF

_UINT_IES = {
    OCTETS, PACKETS, PROTOCOL, TCP_FLAGS, SRC_PORT, IN_IF, DST_PORT, OUT_IF, LAST_SYSUP, FIRST_SYSUP,
    POST_OCTETS, POST_PACKETS, ICMP_V4, SAMPLING_INTERVAL, SAMPLER_ID, SAMPLER_RANDOM_INTERVAL, VLAN,
    POST_VLAN, OCTETS_TOTAL, PACKETS_TOTAL, ICMP_V6, START_S, END_S, START_MS, END_MS, START_US, END_US,
    START_NS, END_NS, START_DELTA_US, END_DELTA_US, SYS_INIT_MS, UDP_SRC, UDP_DST, TCP_SRC, TCP_DST,
    SELECTOR_ID, SAMPLING_PACKET_INTERVAL, SAMPLING_PACKET_SPACE, SAMPLING_SIZE, SAMPLING_POPULATION,
}  # fmt: skip
#: (pen, element id) -> kind. Anything else is skipped by offset.
KNOWN: dict[tuple[int, int], str] = {(0, ie): "uint" for ie in _UINT_IES}
KNOWN.update({(0, SRC_V4): "v4", (0, DST_V4): "v4", (0, SRC_V6): "v6", (0, DST_V6): "v6"})
KNOWN.update({(0, ie): "mac" for ie in (SRC_MAC, POST_DST_MAC, DST_MAC, POST_SRC_MAC)})
KNOWN.update({(0, CTS_SGT_SRC_V9): "uint", (0, CTS_SGT_DST_V9): "uint"})
KNOWN.update({(PEN_CISCO, CTS_SGT_SRC_IPFIX): "uint", (PEN_CISCO, CTS_SGT_DST_IPFIX): "uint"})
_KIND_LENGTHS = {"v4": (4,), "v6": (16,), "mac": (6,), "uint": (1, 2, 3, 4, 5, 6, 7, 8)}
_NTP_EPOCH_OFFSET_S = 2_208_988_800
_TWO31, _TWO32 = 1 << 31, 1 << 32


@dataclass(frozen=True, slots=True)
class Field:
    """One field specifier: element id (enterprise bit stripped), length, enterprise number (0 = IANA/v9)."""

    ie: int
    length: int
    pen: int = 0


@dataclass(slots=True)
class Context:
    """Per-record header facts needed to turn relative values into absolute ones."""

    export_ms: np.ndarray  # int64: header export time in epoch ms
    uptime_ms: np.ndarray  # int64: exporter sysUpTime at export (ms), -1 when unknown
    sampling: np.ndarray  # uint64: default sampling factor (>= 1)
    samplers: dict[int, int]  # sampler/selector id -> factor, from option records


class Plan:
    """A compiled template: the numpy dtype of one record and where each known field sits."""

    __slots__ = ("cols", "dtype", "fields", "fixed_fields", "reclen", "varlen")

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.varlen = any(f.length == VARLEN for f in fields)
        #: For variable-length templates the slow path packs the fixed fields back to back.
        self.fixed_fields = tuple(f for f in fields if f.length != VARLEN)
        names: list[str] = []
        formats: list[str] = []
        offsets: list[int] = []
        self.cols: dict[tuple[int, int], tuple[str, int]] = {}
        offset = 0
        for i, f in enumerate(self.fixed_fields):
            key = (f.pen, f.ie)
            kind = KNOWN.get(key)
            if kind is not None and key not in self.cols and f.length in _KIND_LENGTHS[kind]:
                name = f"f{i}"
                self.cols[key] = (name, f.length)
                names.append(name)
                formats.append(f">u{f.length}" if kind == "uint" and f.length in (1, 2, 4, 8) else f"({f.length},)u1")
                offsets.append(offset)
            offset += f.length
        self.reclen = offset
        self.dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": max(offset, 1)})

    def has(self, ie: int, pen: int = 0) -> bool:
        return (pen, ie) in self.cols

    def uint(self, rec: np.ndarray, ie: int, pen: int = 0) -> np.ndarray | None:
        """The field as uint64 (any length 1..8), or None when the template lacks it."""
        col = self.cols.get((pen, ie))
        if col is None:
            return None
        return as_uint64(rec[col[0]], col[1])

    def convert(self, rec: np.ndarray, ctx: Context) -> np.ndarray:
        """Turn an array of this template's records into FLOW_DTYPE, all columns at once."""
        n = len(rec)
        out = np.zeros(n, dtype=FLOW_DTYPE)
        if n == 0:
            return out
        self._addresses(rec, out)
        u = self.uint
        out["protocol"] = _first(u(rec, PROTOCOL), default=0)
        out["tcp_flags"] = _first(u(rec, TCP_FLAGS), default=0) & 0xFF
        out["src_port"] = _first(u(rec, SRC_PORT), u(rec, UDP_SRC), u(rec, TCP_SRC), default=0)
        dst_port = _first(u(rec, DST_PORT), u(rec, UDP_DST), u(rec, TCP_DST), default=0)
        icmp = _first(u(rec, ICMP_V4), u(rec, ICMP_V6), default=None)
        if icmp is not None and isinstance(dst_port, np.ndarray):
            dst_port = np.where(dst_port == 0, icmp, dst_port)
        elif icmp is not None:
            dst_port = icmp
        out["dst_port"] = dst_port
        out["in_if"] = _first(u(rec, IN_IF), default=0)
        out["out_if"] = _first(u(rec, OUT_IF), default=0)
        out["src_mac"] = _first(u(rec, SRC_MAC), u(rec, POST_SRC_MAC), default=0)
        out["dst_mac"] = _first(u(rec, DST_MAC), u(rec, POST_DST_MAC), default=0)
        out["vlan"] = _first(u(rec, VLAN), u(rec, POST_VLAN), default=0) & 0xFFFF
        src_sgt = _first(u(rec, CTS_SGT_SRC_V9), u(rec, CTS_SGT_SRC_IPFIX, PEN_CISCO), default=0)
        dst_sgt = _first(u(rec, CTS_SGT_DST_V9), u(rec, CTS_SGT_DST_IPFIX, PEN_CISCO), default=0)
        out["src_sgt"] = src_sgt & 0xFFFF
        out["dst_sgt"] = dst_sgt & 0xFFFF
        factor = self._sampling(rec, ctx)
        out["sampling"] = np.minimum(factor, 0xFFFFFFFF)
        octets = _first(u(rec, OCTETS), u(rec, OCTETS_TOTAL), u(rec, POST_OCTETS), default=0)
        packets = _first(u(rec, PACKETS), u(rec, PACKETS_TOTAL), u(rec, POST_PACKETS), default=0)
        out["bytes"] = octets * factor
        out["packets"] = packets * factor
        out["first_ms"] = self._time(rec, ctx, FIRST_SYSUP, START_MS, START_S, START_US, START_NS, START_DELTA_US)
        out["last_ms"] = self._time(rec, ctx, LAST_SYSUP, END_MS, END_S, END_US, END_NS, END_DELTA_US)
        return out

    def _addresses(self, rec: np.ndarray, out: np.ndarray) -> None:
        n = len(rec)
        version = np.zeros(n, dtype=np.uint8)
        for target, v4_ie, v6_ie in (("src_addr", SRC_V4, SRC_V6), ("dst_addr", DST_V4, DST_V6)):
            v4 = self.cols.get((0, v4_ie))
            v6 = self.cols.get((0, v6_ie))
            buf = np.zeros((n, 16), dtype=np.uint8)
            if v6 is not None:
                b6 = rec[v6[0]]
                buf[:] = b6
                version = np.where(b6.any(axis=1), np.uint8(6), version)
            if v4 is not None and v6 is None:
                buf[:, 10:12] = 0xFF
                buf[:, 12:] = rec[v4[0]]
                version[:] = 4
            elif v4 is not None:
                b4 = rec[v4[0]]
                use = b4.any(axis=1) | (version != 6)
                buf[use, :10] = 0
                buf[use, 10:12] = 0xFF
                buf[use, 12:] = b4[use]
                version = np.where(use, np.uint8(4), version)
            out[target] = buf.view("V16").reshape(n)
        out["ip_version"] = version

    def _sampling(self, rec: np.ndarray, ctx: Context) -> np.ndarray:
        factor = ctx.sampling.astype(np.uint64, copy=True)
        sampler = _first(self.uint(rec, SAMPLER_ID), self.uint(rec, SELECTOR_ID), default=None)
        if sampler is not None and ctx.samplers:
            for sid in np.unique(sampler).tolist():
                mapped = ctx.samplers.get(int(sid))
                if mapped:
                    factor[sampler == sid] = mapped
        inline = _first(self.uint(rec, SAMPLING_INTERVAL), self.uint(rec, SAMPLER_RANDOM_INTERVAL), default=None)
        if inline is not None:
            factor = np.where(inline > 1, inline, factor)
        return np.maximum(factor, 1).astype(np.uint64)

    def _time(
        self, rec: np.ndarray, ctx: Context, sysup: int, ms: int, s: int, us: int, ns: int, delta_us: int
    ) -> np.ndarray:
        """Epoch ms from whichever time field the template carries (absolute, NTP, delta or sysUpTime)."""
        value = self.uint(rec, ms)
        if value is not None:
            return value.astype(np.int64)
        value = self.uint(rec, s)
        if value is not None:
            return value.astype(np.int64) * 1000
        for ntp_ie in (us, ns):
            col = self.cols.get((0, ntp_ie))
            if col is not None and col[1] == 8:
                raw = as_uint64(rec[col[0]], 8)
                secs = (raw >> np.uint64(32)).astype(np.int64) - _NTP_EPOCH_OFFSET_S
                frac_ms = ((raw & np.uint64(0xFFFFFFFF)) * np.uint64(1000)) >> np.uint64(32)
                return secs * 1000 + frac_ms.astype(np.int64)
        value = self.uint(rec, delta_us)
        if value is not None:
            return ctx.export_ms - (value // np.uint64(1000)).astype(np.int64)
        value = self.uint(rec, sysup)
        if value is not None:
            back = (ctx.uptime_ms - value.astype(np.int64) + _TWO31) % _TWO32 - _TWO31
            return np.where(ctx.uptime_ms >= 0, ctx.export_ms - back, ctx.export_ms)
        return ctx.export_ms.copy()


def as_uint64(col: np.ndarray, length: int) -> np.ndarray:
    """A big-endian unsigned column of 1..8 bytes as native uint64."""
    if col.ndim == 1:
        return col.astype(np.uint64)
    acc = np.zeros(len(col), dtype=np.uint64)
    for i in range(length):
        acc = (acc << np.uint64(8)) | col[:, i]
    return acc


def _first(*cols: np.ndarray | None, default: int | None) -> Any:
    """The first column the template has, else the default (a scalar numpy broadcasts)."""
    for col in cols:
        if col is not None:
            return col
    return default
