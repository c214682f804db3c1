"""Read what clustering needs from the store: devices, then the flow rows in parallel columnar slices.

Millions of FLOWS_TO rows are the bulk of a clustering job's I/O. They are read grouped per
source device with the values in lists (``read_columns``: no Python object per value), in
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


def read_flow_slice(
    store: GraphStore, index: dict[str, int], day_from: int, day_to: int, bounds: tuple[str, str | None]
) -> tuple[npt.NDArray[np.void], Column, int]:
    """One slice of the flow rows as an EDGE_DTYPE table, its source uids, and how many rows it dropped."""
    params = {"day_from": day_from, "day_to": day_to, "uid_from": bounds[0], "uid_to": bounds[1]}
    cols = store.read_columns("query/snapshot_edges", params, lists=("dst", *_VALUES))
    if not cols:  # the graph does not exist yet
        return np.zeros(0, dtype=EDGE_DTYPE), np.zeros(0, dtype=object), 0
    n = cols["n"]
    if int(n.sum()) != len(cols["dst"]):
        raise StoreError(
            f"query/snapshot_edges {bounds}: the lists hold {len(cols['dst'])} rows but the counts say {int(n.sum())}"
        )
    src = _positions(index, cols["src"])
    dst = _positions(index, cols["dst"])
    src_rows = np.repeat(src, n)
    keep = (src_rows >= 0) & (dst >= 0)
    dropped = len(keep) - int(keep.sum())
    edges = np.zeros(int(keep.sum()), dtype=EDGE_DTYPE)
    edges["src"] = src_rows[keep]
    edges["dst"] = dst[keep]
    for name in _VALUES:
        edges[name] = cols[name][keep]
    return edges, cols["src"], dropped


def _positions(index: dict[str, int], uids: Column) -> npt.NDArray[np.int64]:
    """Snapshot positions of ``uids``; -1 for a device the device read did not see (created since)."""
    return np.fromiter(map(index.get, uids, repeat(-1)), dtype=np.int64, count=len(uids))


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
    _, devices = store.read_rows("query/snapshot_devices")
    uids = [str(r[0]) for r in devices]
    index = {u: i for i, u in enumerate(uids)}
    local = np.array([int(r[1]) == 1 for r in devices], dtype=np.bool_)
    sgt = [None if r[2] is None else int(r[2]) for r in devices]
    profile = [None if r[3] is None else str(r[3]) for r in devices]
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
    all_sources = np.concatenate(sources) if sources else np.zeros(0, dtype=object)
    if len(set(all_sources.tolist())) != len(all_sources):
        raise StoreError("query/snapshot_edges: a source device appeared in two slices; the slice bounds overlap")
    edges = np.concatenate(tables) if len(tables) > 1 else tables[0]
    del tables
    if dropped:
        log.info("snapshot: %d flow rows touch devices created during the read; left for the next run", dropped)
    groups: list[list[str]] = [[] for _ in uids]
    for uid, grp in grp_rows:
        pos = index.get(str(uid))
        if pos is not None:
            groups[pos].append(str(grp))
    progress(1.0, f"snapshot: {len(uids)} devices, {len(edges)} flow rows")
    return GraphSnapshot(
        device_ids=uids, local=local, edges=edges, ad_groups=groups if grp_rows else None,
        profile=profile if any(p is not None for p in profile) else None, sgt=sgt, sgt_names=names,
    )  # fmt: skip


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
