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
    Table,
    WindowTables,
    build_graphs,
    edge_hash,
    sum_groups,
)
from clarion_edge.grouping import group, sort_hash
from clarion_edge.netflow.alloc import keep_freed_memory
from clarion_edge.netflow.group import join_records
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.rowtables import cat_tables, empty_tables, merge_attrs, records_to_tables
from clarion_edge.sitenet import SitePrefixes

log = logging.getLogger(__name__)

_SLICE = 32_768  # records per per-record pass: big enough for numpy, small enough for the CPU cache


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
    attrs: WindowTables = field(default_factory=empty_tables)  # reduced macip/sgt/conn (its edges unused)
    raw: list[tuple[WindowTables, npt.NDArray[np.uint64]]] = field(default_factory=list)  # rows, edge hashes
    raw_n: int = 0  # records in ``raw`` and ``fresh``
    fresh: list[npt.NDArray[np.void]] = field(default_factory=list)  # records not yet turned into rows
    fresh_n: int = 0

    def keys(self) -> int:
        return self.edge_rows + len(self.attrs.macip["mac"])

    def tables(self) -> WindowTables:
        """The reduced window as one table per kind (the edge chunks joined)."""
        edges = (
            self.edges[0] if len(self.edges) == 1 else cat_tables(self.edges) if self.edges else empty_tables().edges
        )
        return WindowTables(edges, self.attrs.macip, self.attrs.sgt, self.attrs.conn)


#: Reduced edge chunks kept apart at most; beyond this they are joined (a copy) to keep reductions cheap.
_MAX_CHUNKS = 16


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
            edges = cat_tables(tables)
            order, starts = group([edges[k] for k in EDGE_KEYS], hashes=h, sorted_hash=sorted_hash)
            if len(starts) < len(order):
                edges, h = sum_groups(edges, order, starts), h[order[starts]]
            w.edges, w.hashes = [edges], [h]
        w.edge_rows = len(h)
        if any(len(r.macip["mac"]) or len(r.sgt["sgt"]) or len(r.conn["mac"]) for r, _ in raw):
            w.attrs = merge_attrs([w.attrs, *(r for r, _ in raw)])

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
