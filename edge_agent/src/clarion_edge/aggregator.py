"""FLOW_DTYPE records -> one EdgeGraph per switch per wall-clock window, vectorised.

Windows are aligned to multiples of ``window_s`` of the agent's clock and hold the flows the
agent *received* in that interval; each edge still carries the exporter's own first/last times.
(Exporter clocks drift and replays carry old times; receive time keeps every record in exactly
one window and lets a window close on time.)

Records are converted on arrival and reduced in chunks into a table keyed by (src, dst, protocol,
port), so memory is bounded by the number of distinct keys, not by the record rate. When the
distinct keys of all open windows (all switches) pass ``max_keys``, the largest window is
emitted early and a new one starts (counted in ``early_flushes``): a flood of distinct flows, or
of spoofed exporters, costs more and smaller batches, never lost counts or unbounded memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from clarion_edge import wire
from clarion_edge.graphbuild import (
    EDGE_KEYS,
    SGT_KEYS,
    Table,
    WindowTables,
    build_graphs,
    edge_hash,
    reduce_distinct,
    reduce_latest,
    sum_groups,
)
from clarion_edge.grouping import group, sort_hash
from clarion_edge.netflow.alloc import keep_freed_memory
from clarion_edge.netflow.group import join_records
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.service import service_side
from clarion_edge.sitenet import SitePrefixes

log = logging.getLogger(__name__)

MAX_COUNTER_PER_RECORD = 2**48  # one record beyond 281 TB is garbage; keeps window sums far from 2**64
MAX_EPOCH_MS = 32_503_680_000_000
_SLICE = 32_768  # records per per-record pass: big enough for numpy, small enough for the CPU cache
_U64 = np.uint64


@dataclass(frozen=True)
class AggregatorConfig:
    """Window length, what counts as local, and the memory and batch limits."""

    agent_id: str
    window_s: float = 60.0
    site_prefixes: tuple[str, ...] = ()
    max_keys: int = 250_000
    max_nodes: int = 50_000
    max_edges: int = 50_000
    chunk_records: int = 131_072

    def __post_init__(self) -> None:
        if not 1 <= self.window_s <= 86_400:
            raise ValueError(f"window must be 1..86400 seconds, got {self.window_s}")
        if self.max_nodes < 3 or self.max_edges < 3:
            raise ValueError("max_nodes and max_edges must be at least 3 (one edge with its nodes)")
        if self.max_keys < 1 or self.chunk_records < 1:
            raise ValueError("max_keys and chunk_records must be positive")


@dataclass
class AggregatorCounters:
    records: int = 0
    windows: int = 0
    early_flushes: int = 0
    clamped: int = 0


def _empty_tables() -> WindowTables:
    u = np.zeros(0, dtype=_U64)
    i = np.zeros(0, dtype=np.int64)
    return WindowTables(
        edges={**dict.fromkeys(EDGE_KEYS, u), "bytes": u, "packets": u, "flows": u, "first": i, "last": i},
        macip={"mac": u, "hi": u, "lo": u},
        sgt={"hi": u, "lo": u, "tag": u, "sgt": u},
        conn={"mac": u, "ifx": u, "vlan": u},
    )


@dataclass
class _Window:
    """An open switch-window: reduced edge chunks (keys distinct across all of them), the reduced
    attribute tables, and rows and records not yet reduced.

    Reduced edges stay a list of chunks, each with its key hashes, so a reduction that finds no
    key twice (most of a busy window's rows are new conversations) only appends: no column is
    copied and no hash recomputed until the window closes.
    """

    switch: wire.SwitchInfo
    start: int
    end: int
    edges: list[Table] = field(default_factory=list)
    hashes: list[npt.NDArray[np.uint64]] = field(default_factory=list)  # edge_hash of each chunk of ``edges``
    edge_rows: int = 0
    attrs: WindowTables = field(default_factory=_empty_tables)  # reduced macip/sgt/conn (its edges unused)
    raw: list[tuple[WindowTables, npt.NDArray[np.uint64]]] = field(default_factory=list)  # rows, edge hashes
    raw_n: int = 0  # records in ``raw`` and ``fresh``
    fresh: list[npt.NDArray[np.void]] = field(default_factory=list)  # records not yet turned into rows
    fresh_n: int = 0

    def keys(self) -> int:
        return self.edge_rows + len(self.attrs.macip["mac"])

    def tables(self) -> WindowTables:
        """The reduced window as one table per kind (the edge chunks joined)."""
        edges = self.edges[0] if len(self.edges) == 1 else _cat(self.edges) if self.edges else _empty_tables().edges
        return WindowTables(edges, self.attrs.macip, self.attrs.sgt, self.attrs.conn)


def _cat(tabs: list[Table]) -> Table:
    return tabs[0] if len(tabs) == 1 else {k: np.concatenate([t[k] for t in tabs]) for k in tabs[0]}


#: Reduced edge chunks kept apart at most; beyond this they are joined (a copy) to keep reductions cheap.
_MAX_CHUNKS = 16


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
_EMPTY = _empty_tables()


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


def _merge_attrs(parts: list[WindowTables]) -> WindowTables:
    """Reduce the attribute tables (MAC->IP pairs, SGTs, attachments) of parts given oldest first."""
    macip = _cat([p.macip for p in parts])
    return WindowTables(
        edges=parts[0].edges,  # unused: edges are reduced by the window itself
        macip=reduce_distinct(macip, ("mac", "hi", "lo")) if len(macip["mac"]) else macip,
        sgt=reduce_latest(_cat([p.sgt for p in parts]), SGT_KEYS),
        conn=reduce_latest(_cat([p.conn for p in parts]), ("mac",)),
    )


@dataclass(frozen=True)
class ClosedWindow:
    """A finished switch-window, reduced; :meth:`build` (slower, Python) may run in another thread."""

    tables: WindowTables
    switch: wire.SwitchInfo
    window: wire.Window
    config: AggregatorConfig
    site: SitePrefixes

    @property
    def edge_count(self) -> int:
        return len(self.tables.edges["meta"])

    def build(self) -> list[wire.EdgeGraph]:
        """The EdgeGraphs of this window (several if it exceeds max_nodes/max_edges), seq=1 placeholders."""
        return build_graphs(
            self.tables,
            agent_id=self.config.agent_id,
            switch=self.switch,
            window=self.window,
            site=self.site,
            max_nodes=self.config.max_nodes,
            max_edges=self.config.max_edges,
        )


class Aggregator:
    """Feeds records of many switches into their current windows and hands out closed windows.

    Not thread-safe: one aggregator thread owns it. Built graphs carry seq=1 as a placeholder:
    the shipper assigns the real, persisted seq when it spools them.
    """

    def __init__(self, config: AggregatorConfig) -> None:
        keep_freed_memory()  # large per-window temporaries: reuse freed memory (netflow/alloc.py)
        self.config = config
        self.site = SitePrefixes(config.site_prefixes)
        self.window_ms = round(config.window_s * 1000)
        self.counters = AggregatorCounters()
        self._windows: dict[str, _Window] = {}

    def _aligned(self, now_ms: int) -> tuple[int, int]:
        start = now_ms - now_ms % self.window_ms
        return start, start + self.window_ms

    def add(self, switch: wire.SwitchInfo, recs: npt.NDArray[np.void], now_ms: int) -> list[ClosedWindow]:
        """Account ``recs`` (FLOW_DTYPE) received at ``now_ms`` from ``switch``; return windows closed meanwhile."""
        if recs.dtype != FLOW_DTYPE:
            raise TypeError(f"records must have FLOW_DTYPE, got {recs.dtype}")
        out = self.poll(now_ms)
        if not len(recs):
            return out
        w = self._windows.get(switch.switch_id)
        if w is None:
            start, end = self._aligned(now_ms)
            w = self._windows[switch.switch_id] = _Window(switch, start, end)
        # Per-record work in slices of about _SLICE records: a decoded batch (a few thousand records)
        # is too small for numpy's per-call cost to vanish, so small batches wait for a few more.
        w.fresh.append(recs)
        w.fresh_n += len(recs)
        w.raw_n += len(recs)
        if w.fresh_n >= _SLICE:
            self._rows(w)
        self.counters.records += len(recs)
        if w.raw_n >= max(self.config.chunk_records, w.edge_rows):
            self._reduce(w)
        elif sum(x.raw_n for x in self._windows.values()) >= 4 * self.config.chunk_records:
            for x in self._windows.values():  # many switches, each below its own threshold
                self._reduce(x)
        else:
            return out
        return out + self._enforce_key_cap(now_ms)

    def _enforce_key_cap(self, now_ms: int) -> list[ClosedWindow]:
        """Keep the distinct keys of all open windows within max_keys by emitting the largest early."""
        out: list[ClosedWindow] = []
        while self._windows and sum(x.keys() for x in self._windows.values()) > self.config.max_keys:
            sid, w = max(self._windows.items(), key=lambda item: item[1].keys())
            self.counters.early_flushes += 1
            log.warning(
                "%d distinct keys in open windows exceed max_keys %d: emitting switch %s's window (%d keys) "
                "early (%d early so far)",
                sum(x.keys() for x in self._windows.values()), self.config.max_keys, sid, w.keys(),
                self.counters.early_flushes,
            )  # fmt: skip
            cut = min(max(now_ms, w.start), w.end)
            out += self._close(w, end=cut)
            self._windows[sid] = _Window(w.switch, cut, w.end)
        return out

    def poll(self, now_ms: int) -> list[ClosedWindow]:
        """Close every window whose end has passed."""
        out: list[ClosedWindow] = []
        for sid, w in list(self._windows.items()):
            if now_ms >= w.end:
                out += self._close(w, end=w.end)
                del self._windows[sid]
        return out

    def flush_all(self, now_ms: int) -> list[ClosedWindow]:
        """Close every open window as it stands (shutdown)."""
        out: list[ClosedWindow] = []
        for w in self._windows.values():
            out += self._close(w, end=min(max(now_ms, w.start), w.end))
        self._windows.clear()
        return out

    def _rows(self, w: _Window) -> None:
        """Per-record work on the records that arrived since the last call."""
        if not w.fresh:
            return
        recs = w.fresh[0] if len(w.fresh) == 1 else join_records(w.fresh)
        w.fresh, w.fresh_n = [], 0
        for i in range(0, len(recs), 2 * _SLICE):
            rows, clamped = records_to_tables(recs[i : i + 2 * _SLICE], self.site)
            self.counters.clamped += clamped
            w.raw.append((rows, edge_hash(rows.edges)))  # hashed while the slice's columns are in cache

    def _reduce(self, w: _Window) -> None:
        """Fold the raw rows into the window: edge keys seen before are summed, new ones appended."""
        self._rows(w)
        if not w.raw:
            return
        raw, w.raw, w.raw_n = w.raw, [], 0
        tables = w.edges + [r.edges for r, _ in raw]
        hashes = w.hashes + [h for _, h in raw]
        h = hashes[0] if len(hashes) == 1 else np.concatenate(hashes)
        sorted_hash = sort_hash(h)
        if sorted_hash is not None and sorted_hash[1].all() and len(tables) <= _MAX_CHUNKS:
            w.edges, w.hashes = tables, hashes  # no key twice: nothing to sum, nothing to copy
        else:
            edges = _cat(tables)
            order, starts = group([edges[k] for k in EDGE_KEYS], hashes=h, sorted_hash=sorted_hash)
            if len(starts) < len(order):
                edges, h = sum_groups(edges, order, starts), h[order[starts]]
            w.edges, w.hashes = [edges], [h]
        w.edge_rows = len(h)
        if any(len(r.macip["mac"]) or len(r.sgt["sgt"]) or len(r.conn["mac"]) for r, _ in raw):
            w.attrs = _merge_attrs([w.attrs, *(r for r, _ in raw)])

    def _close(self, w: _Window, end: int) -> list[ClosedWindow]:
        self._reduce(w)
        if not w.edge_rows:
            return []
        self.counters.windows += 1
        return [ClosedWindow(w.tables(), w.switch, wire.Window(start=w.start, end=end), self.config, self.site)]

    def status(self) -> dict[str, Any]:
        """A snapshot; safe to call from another thread (the status endpoint)."""
        c = self.counters
        windows = tuple(self._windows.values())
        return {
            "records": c.records,
            "windows": c.windows,
            "early_flushes": c.early_flushes,
            "clamped_records": c.clamped,
            "open_windows": len(windows),
            "open_keys": sum(w.keys() for w in windows),
            "buffered_records": sum(w.raw_n for w in windows),
        }
