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
_OFFSETS: dict[str, int] = {name: FLOW_DTYPE.fields[name][1] for name in ("src_addr", "dst_addr")}  # type: ignore[index]
#: Output fields copied from the first element of the list the template carries.
_COPIES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("protocol", ((0, PROTOCOL),)),
    ("tcp_flags", ((0, TCP_FLAGS),)),
    ("src_port", ((0, SRC_PORT), (0, UDP_SRC), (0, TCP_SRC))),
    ("in_if", ((0, IN_IF),)),
    ("out_if", ((0, OUT_IF),)),
    ("src_mac", ((0, SRC_MAC), (0, POST_SRC_MAC))),
    ("dst_mac", ((0, DST_MAC), (0, POST_DST_MAC))),
    ("vlan", ((0, VLAN), (0, POST_VLAN))),
    ("src_sgt", ((0, CTS_SGT_SRC_V9), (PEN_CISCO, CTS_SGT_SRC_IPFIX))),
    ("dst_sgt", ((0, CTS_SGT_DST_V9), (PEN_CISCO, CTS_SGT_DST_IPFIX))),
)
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
    unsampled: bool = False  # every default factor is 1 (lets the converter skip the multiply)


class Plan:
    """A compiled template: the numpy dtype of one record and where each known field sits."""

    __slots__ = (
        "cols", "copies", "dst_port", "dtype", "fields", "fixed_fields", "icmp", "inline_sampling", "octets",
        "packets", "reclen", "sampler_col", "varlen",
    )  # fmt: skip

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
                formats.append(_format(kind, f.length))
                offsets.append(offset)
            offset += f.length
        self.reclen = offset
        self.dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": max(offset, 1)})
        self._compile()

    def has(self, ie: int, pen: int = 0) -> bool:
        return (pen, ie) in self.cols

    def uint(self, rec: np.ndarray, ie: int, pen: int = 0) -> np.ndarray | None:
        """The field as uint64 (any length 1..8), or None when the template lacks it."""
        col = self.cols.get((pen, ie))
        if col is None:
            return None
        return as_uint64(rec[col[0]], col[1])

    def _source(self, *keys: tuple[int, int]) -> tuple[str, int] | None:
        """The first of ``keys`` the template carries, as (column, length)."""
        for key in keys:
            col = self.cols.get(key)
            if col is not None:
                return col
        return None

    def _compile(self) -> None:
        """Decide once per template which column feeds each output field."""
        self.copies: list[tuple[str, str, int]] = []
        for target, keys in _COPIES:
            col = self._source(*keys)
            if col is not None:
                self.copies.append((target, col[0], col[1]))
        self.dst_port = self._source((0, DST_PORT), (0, UDP_DST), (0, TCP_DST))
        self.icmp = self._source((0, ICMP_V4), (0, ICMP_V6))
        self.octets = self._source((0, OCTETS), (0, OCTETS_TOTAL), (0, POST_OCTETS))
        self.packets = self._source((0, PACKETS), (0, PACKETS_TOTAL), (0, POST_PACKETS))
        self.sampler_col = self._source((0, SAMPLER_ID), (0, SELECTOR_ID))
        self.inline_sampling = self._source((0, SAMPLING_INTERVAL), (0, SAMPLER_RANDOM_INTERVAL))

    def convert(self, rec: np.ndarray, ctx: Context, out: np.ndarray | None = None) -> np.ndarray:
        """Turn an array of this template's records into FLOW_DTYPE (written into a zeroed ``out`` if given).

        Columns are assigned straight from the big-endian record view (numpy swaps and widens in
        the same pass); fields the template lacks keep the zero ``out`` starts with.
        """
        n = len(rec)
        if out is None:
            out = np.zeros(n, dtype=FLOW_DTYPE)  # a given ``out`` must be zeroed by the caller
        if n == 0:
            return out
        self._addresses(rec, out)
        for target, name, length in self.copies:
            out[target] = rec[name] if length in (1, 2, 4, 8) else as_uint64(rec[name], length)
        if self.dst_port is not None:
            out["dst_port"] = self._col(rec, self.dst_port)
        if self.icmp is not None:
            icmp = self._col(rec, self.icmp)
            out["dst_port"] = np.where(out["dst_port"] == 0, icmp, out["dst_port"])
        sampled = not ctx.unsampled or self.sampler_col is not None or self.inline_sampling is not None
        factor = self._sampling(rec, ctx) if sampled else None
        out["sampling"] = 1 if factor is None else np.minimum(factor, 0xFFFFFFFF)
        for target, col in (("bytes", self.octets), ("packets", self.packets)):
            if col is not None:
                out[target] = self._col(rec, col) if factor is None else as_uint64(rec[col[0]], col[1]) * factor
        out["first_ms"] = self._time(rec, ctx, FIRST_SYSUP, START_MS, START_S, START_US, START_NS, START_DELTA_US)
        out["last_ms"] = self._time(rec, ctx, LAST_SYSUP, END_MS, END_S, END_US, END_NS, END_DELTA_US)
        return out

    @staticmethod
    def _col(rec: np.ndarray, col: tuple[str, int]) -> np.ndarray:
        return rec[col[0]] if col[1] in (1, 2, 4, 8) else as_uint64(rec[col[0]], col[1])

    def _addresses(self, rec: np.ndarray, out: np.ndarray) -> None:
        """Addresses go straight into ``out`` through a (n, 4) big-endian word view of each 16-byte column."""
        n = len(rec)
        version: np.ndarray | int = 0
        for target, v4_ie, v6_ie in (("src_addr", SRC_V4, SRC_V6), ("dst_addr", DST_V4, DST_V6)):
            v4 = self.cols.get((0, v4_ie))
            v6 = self.cols.get((0, v6_ie))
            if v4 is None and v6 is None:
                continue
            words = np.ndarray((n, 4), dtype=">u4", buffer=out, offset=_OFFSETS[target], strides=(out.strides[0], 4))
            if v6 is not None:
                # Two 8-byte copies per address: numpy copies a V16 column item by item.
                _u64_pairs(out, _OFFSETS[target])[:] = _u64_pairs(rec, rec.dtype.fields[v6[0]][1])  # type: ignore[index]
                if target == "src_addr":
                    version = 6
            if v4 is not None:
                col = rec[v4[0]]
                if v6 is None:
                    words[:, 2] = 0xFFFF
                    words[:, 3] = col
                    if target == "src_addr":
                        version = 4
                else:
                    # Both families in one template: the one that is set wins (IPv4 when neither is).
                    use = (col != 0) | ~words.any(axis=1)
                    words[use, :2] = 0
                    words[use, 2] = 0xFFFF
                    words[use, 3] = col[use]
                    if target == "src_addr":
                        version = np.where(use, np.uint8(4), np.uint8(6))
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
        col = self.cols.get((0, sysup))
        if col is not None:
            # One swapping cast straight to int64 (as uint64 then int64 would be: the same bits, a pass more).
            raw = rec[col[0]] if col[1] in (1, 2, 4, 8) else as_uint64(rec[col[0]], col[1])
            back = ctx.uptime_ms - raw.astype(np.int64)
            back += _TWO31
            back &= _TWO32 - 1  # the same as % 2**32 in two's complement, without a division per record
            back -= _TWO31
            if len(back) and int(ctx.uptime_ms.min()) >= 0:  # every header's uptime known: no selection
                np.subtract(ctx.export_ms, back, out=back)
                return back
            return np.where(ctx.uptime_ms >= 0, ctx.export_ms - back, ctx.export_ms)
        return ctx.export_ms.copy()


def _u64_pairs(arr: np.ndarray, offset: int) -> np.ndarray:
    """The 16 bytes at ``offset`` of each item of a contiguous array as two raw (unswapped) uint64 words."""
    return np.ndarray((len(arr), 2), dtype=np.uint64, buffer=arr, offset=offset, strides=(arr.strides[0], 8))


def _format(kind: str, length: int) -> str:
    """numpy format of one field: big-endian ints, addresses as one word / one 16-byte blob."""
    if kind == "uint":
        return f">u{length}" if length in (1, 2, 4, 8) else f"({length},)u1"
    return {"v4": ">u4", "v6": "V16"}.get(kind, f"({length},)u1")


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
