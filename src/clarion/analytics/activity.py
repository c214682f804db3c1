"""Per-device volumes, client/server balance, peer structure and activity over time, from the flow rows.

Split from ``features``: these walk every flow row (millions at 100k devices), so they count
with bincounts and presence grids, never sorts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from clarion.analytics.ports import PORT_EPHEMERAL, PORT_RARE, PORT_RARE_LOW
from clarion.analytics.snapshot import GraphSnapshot

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

HOUR_MS = 3_600_000
TIME_BINS = 6  # four-hour bins of the UTC day

SCALAR_NAMES = (
    "log flows out",
    "log flows in",
    "log bytes out",
    "log bytes in",
    "log packets out",
    "log packets in",
    "log bytes per packet out",
    "log bytes per packet in",
    "client share of flows",
    "log distinct servers reached",
    "log distinct clients served",
    "share of remote peers",
    "log services used",
    "log services offered",
    "share of hours active",
    "share of days active",
)
TIME_NAMES = tuple(f"share of flows {4 * i:02d}-{4 * i + 4:02d} UTC" for i in range(TIME_BINS))


def device_scalars(
    snapshot: GraphSnapshot,
    src: Ints,
    dst: Ints,
    flows: Floats,
    port_bucket: Ints,
    out_adj: sp.csr_matrix,
    in_adj: sp.csr_matrix,
    used: sp.csr_matrix,
    offered: sp.csr_matrix,
) -> Floats:
    """Volumes, client/server balance, peer structure and activity per device (see SCALAR_NAMES)."""
    n = snapshot.n_devices
    e = snapshot.edges
    byt = e["bytes"].astype(np.float64)
    pkt = e["packets"].astype(np.float64)
    f_out = np.bincount(src, flows, n)
    f_in = np.bincount(dst, flows, n)
    b_out = np.bincount(src, byt, n)
    b_in = np.bincount(dst, byt, n)
    p_out = np.bincount(src, pkt, n)
    p_in = np.bincount(dst, pkt, n)
    fan_out = np.diff(out_adj.indptr).astype(np.float64)
    fan_in = np.diff(in_adj.indptr).astype(np.float64)
    peers = sp.csr_matrix(out_adj + in_adj)
    peers.data[:] = 1.0
    remote = (~np.asarray(snapshot.local)).astype(np.float64)
    n_peers = np.diff(peers.indptr).astype(np.float64)
    remote_share = (peers @ remote) / np.maximum(n_peers, 1.0)
    total = f_out + f_in

    # Activity: distinct hour and day buckets in which a device started flows, or served a real service.
    # Rows where it only received a stray flow (a scanner's probe of a rare port reaches every device
    # every day) do not count: they would make every device look active all the time.
    hours_first = e["first_seen"] // HOUR_MS
    hours_last = e["last_seen"] // HOUR_MS
    span_h = float(max(1, int(hours_last.max() - hours_first.min() + 1))) if len(e) else 1.0
    served = ~np.isin(port_bucket, (PORT_RARE, PORT_RARE_LOW, PORT_EPHEMERAL))
    act_dev = np.concatenate([src, dst[served]])
    # A row marks its first and its last hour; most flows start and end within one hour: one cell, not two.
    crossing = hours_last != hours_first
    served_crossing = served & crossing
    active_h = distinct_per_device(
        np.concatenate([act_dev, src[crossing], dst[served_crossing]]),
        np.concatenate([hours_first, hours_first[served], hours_last[crossing], hours_last[served_crossing]]),
        n,
    )
    days = e["day"].astype(np.int64)
    span_d = float(max(1, int(days.max() - days.min() + 1))) if len(e) else 1.0
    active_d = distinct_per_device(act_dev, np.concatenate([days, days[served]]), n)

    cols = [
        np.log1p(f_out),
        np.log1p(f_in),
        np.log1p(b_out),
        np.log1p(b_in),
        np.log1p(p_out),
        np.log1p(p_in),
        np.log1p(b_out / np.maximum(p_out, 1.0)),
        np.log1p(b_in / np.maximum(p_in, 1.0)),
        f_out / np.maximum(total, 1.0),
        np.log1p(fan_out),
        np.log1p(fan_in),
        remote_share,
        np.log1p(np.diff(used.indptr).astype(np.float64)),
        np.log1p(np.diff(offered.indptr).astype(np.float64)),
        active_h / span_h,
        active_d / span_d,
    ]
    return np.asarray(np.stack(cols, axis=1), dtype=np.float64)


#: Up to this many device × bucket cells, distinct buckets are counted on a dense grid (bytes of memory).
DENSE_DISTINCT_CELLS = 64_000_000


def distinct_per_device(dev: Ints, bucket: Ints, n: int) -> Floats:
    """How many distinct buckets each device touches (a sparse matrix sums duplicates in C)."""
    if len(dev) == 0:
        return np.zeros(n)
    b = bucket - bucket.min()
    width = int(b.max()) + 1
    if n * width <= DENSE_DISTINCT_CELLS:
        # A dense presence grid (a day of hours: 24 columns) is O(rows); the sparse route sorts every row.
        seen = np.zeros(n * width, dtype=np.bool_)
        seen[dev * width + b] = True
        return np.asarray(np.count_nonzero(seen.reshape(n, width), axis=1), dtype=np.float64)
    m = sp.csr_matrix((np.ones(len(dev), dtype=np.int8), (dev, b)), shape=(n, width))
    m.sum_duplicates()
    return np.asarray(np.diff(m.indptr), dtype=np.float64)


def time_profile(
    first: npt.NDArray[np.int64], last: npt.NDArray[np.int64], src: Ints, dst: Ints, flows: Floats, n: int
) -> Floats:
    """Share of a device's flows per four-hour bin of the UTC day (office hours, always on, at night)."""
    mid = (first // 2 + last // 2) % 86_400_000
    b = (mid // (4 * HOUR_MS)).astype(np.int64)
    # Two bincounts, not one over concatenated copies: flow counts are whole numbers, so the sums are exact either way.
    out = np.bincount(src * TIME_BINS + b, flows, n * TIME_BINS)
    out += np.bincount(dst * TIME_BINS + b, flows, n * TIME_BINS)
    out = out.reshape(n, TIME_BINS)
    tot = out.sum(axis=1, keepdims=True)
    tot[tot == 0] = 1.0
    return np.asarray(out / tot, dtype=np.float64)
