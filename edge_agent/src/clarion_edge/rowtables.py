"""Decoded flow records -> the column tables a window reduces: edges with their service side, and attributes.

One pass per slice of records: local/remote by site prefixes, the service side of each
conversation, MAC->IP pairs, SGTs and switch attachments. Counters and times out of any sane range
are clamped (and counted) here, so a hostile exporter cannot overflow a window's sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from clarion_edge.graphbuild import EDGE_KEYS, SGT_KEYS, Table, WindowTables, reduce_distinct, reduce_latest
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.service import service_side
from clarion_edge.sitenet import SitePrefixes

MAX_COUNTER_PER_RECORD = 2**48  # one record beyond 281 TB is garbage; keeps window sums far from 2**64
MAX_EPOCH_MS = 32_503_680_000_000
_U64 = np.uint64


def empty_tables() -> WindowTables:
    u = np.zeros(0, dtype=_U64)
    i = np.zeros(0, dtype=np.int64)
    return WindowTables(
        edges={**dict.fromkeys(EDGE_KEYS, u), "bytes": u, "packets": u, "flows": u, "first": i, "last": i},
        macip={"mac": u, "hi": u, "lo": u},
        sgt={"hi": u, "lo": u, "tag": u, "sgt": u},
        conn={"mac": u, "ifx": u, "vlan": u},
    )


def cat_tables(tabs: list[Table]) -> Table:
    return tabs[0] if len(tabs) == 1 else {k: np.concatenate([t[k] for t in tabs]) for k in tabs[0]}


def _pairs_selected(
    sel_a: npt.NDArray[np.bool_], sel_b: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """(record index, is_dst_side) of the selected sides, in arrival order: src before dst per record."""
    both = np.empty(2 * len(sel_a), dtype=bool)
    both[0::2] = sel_a
    both[1::2] = sel_b
    idx = np.flatnonzero(both)
    return idx >> 1, (idx & 1).astype(bool)


def _pick(side: npt.NDArray[np.bool_], rows: npt.NDArray[np.intp], a: npt.NDArray[Any], b: npt.NDArray[Any]) -> Any:
    return np.where(side, b[rows], a[rows])


#: FLOW_DTYPE seen as the big-endian halves of its two addresses: one strided, byte-swapping copy per
#: half, where a V16 column would be copied item by item.
_HALVES = np.dtype(
    {  # type: ignore[call-overload]
        "names": ["src_hi", "src_lo", "dst_hi", "dst_lo"],
        "formats": [">u8"] * 4,
        "offsets": [FLOW_DTYPE.fields[f][1] + d for f in ("src_addr", "dst_addr") for d in (0, 8)],  # type: ignore[index]
        "itemsize": FLOW_DTYPE.itemsize,
    }
)


#: The two SGT columns (adjacent u2) of FLOW_DTYPE as one word: one pass tells whether a record has either.
_SGTS = np.dtype(
    {  # type: ignore[call-overload]
        "names": ["both"],
        "formats": ["<u4"],
        "offsets": [FLOW_DTYPE.fields["src_sgt"][1]],  # type: ignore[index]
        "itemsize": FLOW_DTYPE.itemsize,
    }
)
if FLOW_DTYPE.fields["dst_sgt"][1] != FLOW_DTYPE.fields["src_sgt"][1] + 2:  # type: ignore[index]
    raise ImportError("FLOW_DTYPE must keep src_sgt and dst_sgt adjacent")
_EMPTY = empty_tables()


def _macs(recs: npt.NDArray[np.void], name: str) -> tuple[npt.NDArray[np.uint64], bool]:
    """(the 48-bit MAC column, whether any record has one); without any, zeros (lazily mapped) and no pass."""
    col = recs[name]
    if col.any():
        return col & _U64(0xFFFF_FFFF_FFFF), True
    return np.zeros(len(recs), dtype=_U64), False


def _halves(recs: npt.NDArray[np.void], side: str) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(high, low) native uint64 halves of the big-endian 16-byte address of each record."""
    view = recs.view(_HALVES)
    return view[f"{side}_hi"].astype(np.uint64), view[f"{side}_lo"].astype(np.uint64)


def records_to_tables(recs: npt.NDArray[np.void], site: SitePrefixes) -> tuple[WindowTables, int]:
    """Per-record work: endpoints, client/server orientation, and the attribute rows; not yet reduced."""
    n = len(recs)
    s_hi, s_lo = _halves(recs, "src")
    d_hi, d_lo = _halves(recs, "dst")
    s_mac, s_has = _macs(recs, "src_mac")
    d_mac, d_has = _macs(recs, "dst_mac")
    # A MAC names the endpoint only for a local address: for remote ones it is the router's.
    no_dev = np.zeros(n, dtype=bool)
    s_dev = (s_mac != 0) & site.is_local(s_hi, s_lo) if s_has else no_dev
    d_dev = (d_mac != 0) & site.is_local(d_hi, d_lo) if d_has else no_dev
    any_dev = bool(s_dev.any() or d_dev.any())
    s_ehi = np.where(s_dev, _U64(0), s_hi) if any_dev else s_hi
    s_elo = np.where(s_dev, s_mac, s_lo) if any_dev else s_lo
    d_ehi = np.where(d_dev, _U64(0), d_hi) if any_dev else d_hi
    d_elo = np.where(d_dev, d_mac, d_lo) if any_dev else d_lo
    proto = np.ascontiguousarray(recs["protocol"])
    sport = np.ascontiguousarray(recs["src_port"])
    dport = np.ascontiguousarray(recs["dst_port"])
    rev, port = service_side(proto, sport, dport, recs["tcp_flags"], s_hi, s_lo, d_hi, d_lo)
    meta = (proto.astype(_U64) << _U64(16)) | port.astype(_U64)
    if any_dev:
        c_dev, v_dev = np.where(rev, d_dev, s_dev), np.where(rev, s_dev, d_dev)
        meta |= (c_dev.astype(_U64) << _U64(25)) | (v_dev.astype(_U64) << _U64(24))
    byt = np.array(recs["bytes"], dtype=_U64)
    pkt = np.array(recs["packets"], dtype=_U64)
    clamped = 0
    if n and max(int(byt.max()), int(pkt.max())) > MAX_COUNTER_PER_RECORD:
        clamped = int(np.count_nonzero((byt > MAX_COUNTER_PER_RECORD) | (pkt > MAX_COUNTER_PER_RECORD)))
        byt = np.minimum(byt, _U64(MAX_COUNTER_PER_RECORD))
        pkt = np.minimum(pkt, _U64(MAX_COUNTER_PER_RECORD))
    first = np.array(recs["first_ms"], dtype=np.int64)
    last = np.array(recs["last_ms"], dtype=np.int64)
    if n and (min(int(first.min()), int(last.min())) < 0 or max(int(first.max()), int(last.max())) > MAX_EPOCH_MS):
        first = np.clip(first, 0, MAX_EPOCH_MS)
        last = np.clip(last, 0, MAX_EPOCH_MS)
    first = np.minimum(first, last)
    any_hi = bool(s_ehi.any() or d_ehi.any())  # IPv4 (mapped) addresses and MACs have no high half
    edges: Table = {
        "s_hi": np.where(rev, d_ehi, s_ehi) if any_hi else s_ehi,
        "s_lo": np.where(rev, d_elo, s_elo),
        "d_hi": np.where(rev, s_ehi, d_ehi) if any_hi else d_ehi,
        "d_lo": np.where(rev, s_elo, d_elo),
        "meta": meta,
        "bytes": byt,
        "packets": pkt,
        "flows": np.ones(n, dtype=_U64),
        "first": first,
        "last": last,
    }
    return WindowTables(edges, *_attributes(recs, s_dev, d_dev, s_mac, d_mac, (s_hi, s_lo, d_hi, d_lo),
                                            (s_ehi, s_elo, d_ehi, d_elo))), clamped  # fmt: skip


def _attributes(
    recs: npt.NDArray[np.void],
    s_dev: npt.NDArray[np.bool_],
    d_dev: npt.NDArray[np.bool_],
    s_mac: npt.NDArray[np.uint64],
    d_mac: npt.NDArray[np.uint64],
    ips: tuple[npt.NDArray[np.uint64], ...],
    eps: tuple[npt.NDArray[np.uint64], ...],
) -> tuple[Table, Table, Table]:
    """MAC->IP pairs, SGT sightings and switch attachments, each side in arrival order.

    The most recently received SGT or attachment wins (a re-authenticated host's new SGT), so
    rows keep record order, the source side before the destination side of each record.
    """
    s_hi, s_lo, d_hi, d_lo = ips
    s_ehi, s_elo, d_ehi, d_elo = eps
    # Most exporters send no MACs and no SGTs: one pass over each finds that, and the tables stay empty.
    has_dev = bool(s_dev.any() or d_dev.any())
    has_sgt = bool(recs.view(_SGTS)["both"].any())
    if not has_dev and not has_sgt:
        return _EMPTY.macip, _EMPTY.sgt, _EMPTY.conn
    rows, side = _pairs_selected(s_dev, d_dev)
    macip: Table = {
        "mac": _pick(side, rows, s_mac, d_mac),
        "hi": _pick(side, rows, s_hi, d_hi),
        "lo": _pick(side, rows, s_lo, d_lo),
    }
    s_sgt, d_sgt = recs["src_sgt"], recs["dst_sgt"]
    rows, side = _pairs_selected(s_sgt != 0, d_sgt != 0)
    sgt: Table = {
        "hi": _pick(side, rows, s_ehi, d_ehi),
        "lo": _pick(side, rows, s_elo, d_elo),
        "tag": _pick(side, rows, s_dev, d_dev).astype(_U64),
        "sgt": _pick(side, rows, s_sgt, d_sgt).astype(_U64),
    }
    # The switch saw the source MAC arrive on in_if; a destination MAC leave by out_if (when given).
    out_if = recs["out_if"]
    rows, side = _pairs_selected(s_dev, d_dev & (out_if != 0))
    conn: Table = {
        "mac": _pick(side, rows, s_mac, d_mac),
        "ifx": _pick(side, rows, recs["in_if"], out_if).astype(_U64),
        "vlan": recs["vlan"][rows].astype(_U64) & _U64(0xFFF),
    }
    return macip, sgt, conn


def merge_attrs(parts: list[WindowTables]) -> WindowTables:
    """Reduce the attribute tables (MAC->IP pairs, SGTs, attachments) of parts given oldest first."""
    macip = cat_tables([p.macip for p in parts])
    return WindowTables(
        edges=parts[0].edges,  # unused: edges are reduced by the window itself
        macip=reduce_distinct(macip, ("mac", "hi", "lo")) if len(macip["mac"]) else macip,
        sgt=reduce_latest(cat_tables([p.sgt for p in parts]), SGT_KEYS),
        conn=reduce_latest(cat_tables([p.conn for p in parts]), ("mac",)),
    )
