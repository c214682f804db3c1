"""Read what clustering needs from the store: devices, then the flow rows in parallel columnar slices.

Millions of FLOWS_TO rows are the bulk of a clustering job's I/O. They are read grouped per
source device with each relationship's values as one integer tuple (``read_columns``: one
aggregation per row for the store, no Python object per value here), in
slices by source uid over several connections, so the store works on one slice while this
process decodes another. The snapshot keeps every per-day row: the features need the buckets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from clarion.analytics.snapshot import EDGE_DTYPE, GraphSnapshot
from clarion.store.port import Column, GraphStore, StoreError

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
#: Slices of the flow read and connections reading them at once (the store answers each on a thread).
SLICES = 4
CONNECTIONS = 2
_VALUES = ("protocol", "port", "bytes", "packets", "flows", "first_seen", "last_seen", "day")


def _noop(_: float, __: str) -> None:
    return None


def slice_bounds(uids: list[str], slices: int) -> list[tuple[str, str | None]]:
    """``[from, to)`` uid ranges holding about equal numbers of devices; they cover every string.

    Bounds are ASCII only (as MAC and IP uids are), so the store's string order and Python's agree.
    """
    ordered = sorted(uids)
    cuts = sorted({ordered[len(ordered) * i // slices] for i in range(1, slices)} if ordered else set())
    cuts = [c for c in cuts if c.isascii() and c]
    starts = ["", *cuts]
    return list(zip(starts, [*cuts, None], strict=True))


class NodeIndex:
    """Snapshot positions of the store's node keys: uid strings (a dict) or FalkorDB node ids (a sorted array)."""

    def __init__(self, nodes: list[Any]) -> None:
        self.ints = bool(nodes) and all(type(n) is int for n in nodes)
        self.by_key: dict[Any, int] = {}
        self.order = np.zeros(0, dtype=np.int64)
        self.sorted = np.zeros(0, dtype=np.int64)
        if self.ints:
            ids = np.array(nodes, dtype=np.int64)
            self.order = np.argsort(ids, kind="stable")
            self.sorted = ids[self.order]
        else:
            self.by_key = {n: i for i, n in enumerate(nodes)}

    def positions(self, keys: Column) -> npt.NDArray[np.int64]:
        """Positions of ``keys``; -1 for a node the device read did not see (created since)."""
        if not self.ints:
            return np.fromiter(map(self.by_key.get, keys, repeat(-1)), dtype=np.int64, count=len(keys))
        ids = np.asarray(keys, dtype=np.int64)
        at = np.searchsorted(self.sorted, ids).clip(0, len(self.sorted) - 1)
        return np.where(self.sorted[at] == ids, self.order[at], -1).astype(np.int64)


def read_flow_slice(
    store: GraphStore, index: NodeIndex, day_from: int, day_to: int, bounds: tuple[str, str | None]
) -> tuple[npt.NDArray[np.void], Column, int]:
    """One slice of the flow rows as an EDGE_DTYPE table, its source keys, and how many rows it dropped.

    The values come as one integer tuple per relationship (``v``); FalkorDB puts the end's node id
    in front of them, Neo4j answers the end uids as their own list (``dst``).
    """
    params = {"day_from": day_from, "day_to": day_to, "uid_from": bounds[0], "uid_to": bounds[1]}
    ends = 0 if store.dialect == "neo4j" else 1
    lists = ("dst",) if ends == 0 else ()
    cols = store.read_columns("query/snapshot_edges", params, lists=lists, tuples={"v": ends + len(_VALUES)})
    if not cols:  # the graph does not exist yet
        return np.zeros(0, dtype=EDGE_DTYPE), np.zeros(0, dtype=object), 0
    v = cols["v"]
    n = cols["v.rows"]
    src = index.positions(cols["src"])
    dst = index.positions(cols["dst"] if ends == 0 else v[:, 0])
    src_rows = np.repeat(src, n)
    keep = (src_rows >= 0) & (dst >= 0)
    dropped = len(keep) - int(keep.sum())
    whole = dropped == 0
    edges = np.zeros(len(keep) if whole else int(keep.sum()), dtype=EDGE_DTYPE)
    edges["src"] = src_rows if whole else src_rows[keep]
    edges["dst"] = dst if whole else dst[keep]
    for j, name in enumerate(_VALUES, start=ends):
        edges[name] = v[:, j] if whole else v[keep, j]
    return edges, cols["src"], dropped


def _devices(store: GraphStore) -> tuple[list[Any], list[list[Any]]]:
    """(node keys, rows of node, uid, local, sgt, profile) of every device."""
    _, rows = store.read_rows("query/snapshot_devices")
    return [r[0] for r in rows], rows


def read_snapshot(
    store: GraphStore,
    day_from: int,
    day_to: int,
    progress: Progress = _noop,
    *,
    slices: int = SLICES,
    connections: int = CONNECTIONS,
) -> GraphSnapshot:
    """Everything clustering reads, in bulk: no query per device, no Python object per flow value."""
    progress(0.0, "reading devices")
    nodes, devices = _devices(store)
    index = NodeIndex(nodes)
    uids = [str(r[1]) for r in devices]
    local = np.array([int(r[2]) == 1 for r in devices], dtype=np.bool_)
    sgt = [None if r[3] is None else int(r[3]) for r in devices]
    profile = [None if r[4] is None else str(r[4]) for r in devices]
    by_uid = {u: i for i, u in enumerate(uids)}
    del devices
    bounds = slice_bounds(uids, max(1, slices))
    progress(0.1, f"reading flows of {len(uids)} devices in {len(bounds)} slices")
    with ThreadPoolExecutor(max(1, connections), thread_name_prefix="snapshot-read") as pool:
        parts = [pool.submit(read_flow_slice, store, index, day_from, day_to, b) for b in bounds]
        groups_rows = pool.submit(store.read_rows, "query/snapshot_groups")
        names_rows = pool.submit(store.read_rows, "query/sgt_names")
        tables, sources, dropped = _gather(parts, progress)
        grp_rows = groups_rows.result()[1]
        names = {int(v): str(n) for v, n in names_rows.result()[1]}
    if index.ints:
        _check_ids_kept(store, nodes, uids)
    all_sources = np.concatenate(sources) if sources else np.zeros(0, dtype=object)
    if len(set(all_sources.tolist())) != len(all_sources):
        raise StoreError("query/snapshot_edges: a source device appeared in two slices; the slice bounds overlap")
    edges = np.concatenate(tables) if len(tables) > 1 else tables[0]
    del tables
    if dropped:
        log.info("snapshot: %d flow rows touch devices created during the read; left for the next run", dropped)
    groups: list[list[str]] = [[] for _ in uids]
    for uid, grp in grp_rows:
        pos = by_uid.get(str(uid))
        if pos is not None:
            groups[pos].append(str(grp))
    progress(1.0, f"snapshot: {len(uids)} devices, {len(edges)} flow rows")
    return GraphSnapshot(
        device_ids=uids, local=local, edges=edges, ad_groups=groups if grp_rows else None,
        profile=profile if any(p is not None for p in profile) else None, sgt=sgt, sgt_names=names,
    )  # fmt: skip


def _check_ids_kept(store: GraphStore, nodes: list[Any], uids: list[str]) -> None:
    """Refuse a read during which a node id changed hands (a device deleted, its id reused by a new one)."""
    later_nodes, later = _devices(store)
    now = {n: str(r[1]) for n, r in zip(later_nodes, later, strict=True)}
    moved = [(n, u, now[n]) for n, u in zip(nodes, uids, strict=True) if n in now and now[n] != u]
    if moved:
        n, before, after = moved[0]
        raise StoreError(
            f"query/snapshot_edges: node id {n} belonged to device {before!r} and now to {after!r} "
            f"({len(moved)} such): devices were replaced during the snapshot read; run the clustering again"
        )


def _gather(
    parts: list[Future[tuple[npt.NDArray[np.void], Column, int]]], progress: Progress
) -> tuple[list[npt.NDArray[np.void]], list[Column], int]:
    """Slice results in slice order (so the table's row order does not depend on timing)."""
    tables: list[npt.NDArray[np.void]] = []
    sources: list[Any] = []
    dropped = 0
    for i, fut in enumerate(parts):
        edges, src, lost = fut.result()
        tables.append(edges)
        sources.append(src)
        dropped += lost
        progress(0.1 + 0.85 * (i + 1) / len(parts), f"read flow slice {i + 1}/{len(parts)}: {len(edges)} rows")
    return tables, sources, dropped
