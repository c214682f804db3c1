"""NetFlow v5: a fixed 24-byte header and 48-byte records, decoded as if they had a template.

v5 has no templates, options or observation domains, so a datagram only needs its header
checked before its records join the batch's one v5 group.
"""

from __future__ import annotations

import struct

import numpy as np

from clarion_edge.netflow.bulk import gather_records, sorted_unique
from clarion_edge.netflow.fields import Field, Plan
from clarion_edge.netflow.group import Group, bump
from clarion_edge.netflow.state import Domain

_V5_HEADER = struct.Struct("!HHIIIIBBH")  # 24 bytes
_V5_RECORD = 48
_V5_MAX_COUNT = 30
#: The v5 record as a template: element ids of RFC 3954 at v5's fixed offsets (0 = padding/unused).
V5_PLAN = Plan(
    tuple(
        Field(ie, ln)
        for ie, ln in (
            (8, 4), (12, 4), (15, 4), (10, 2), (14, 2), (2, 4), (1, 4), (22, 4), (21, 4), (7, 2), (11, 2),
            (0, 1), (6, 1), (4, 1), (5, 1), (16, 2), (17, 2), (9, 1), (13, 1), (0, 2),
        )
    )
)  # fmt: skip
#: v5 has no option records: no sampler table and no system init time.
_V5_DOMAIN = Domain()
#: The key of the v5 group among a batch's groups (template groups are keyed by ``id()``, never negative).
V5_GROUP = -1


def add_v5(data: bytes, groups: dict[int, Group], stats: dict[str, int]) -> None:
    """Check a v5 datagram's header and queue its records in the batch's v5 group."""
    if len(data) < _V5_HEADER.size:
        bump(stats, "truncated")
        return
    _, count, uptime, secs, nsecs, _seq, _etype, _eid, sampling = _V5_HEADER.unpack_from(data)
    if count == 0 or count > _V5_MAX_COUNT:
        bump(stats, "bad_count")
        return
    end = _V5_HEADER.size + _V5_RECORD * count
    if len(data) < end:
        bump(stats, "truncated")
        return
    interval = sampling & 0x3FFF
    group = groups.get(V5_GROUP)
    if group is None:
        group = groups[V5_GROUP] = Group(V5_PLAN, _V5_DOMAIN, None, stats)
    group.add(data[_V5_HEADER.size : end], count, (secs * 1000 + nsecs // 1_000_000, uptime, interval or 1))
    stats["records"] = stats.get("records", 0) + count


def add_v5_batch(datas: list[bytes], stats: list[dict[str, int]], groups: dict[int, Group]) -> None:
    """Check many v5 headers at once and queue their records in the batch's v5 group, one gather per
    sampling interval (the same checks and counters as ``add_v5``, without Python per datagram)."""
    n = len(datas)
    sizes = np.fromiter(map(len, datas), dtype=np.int64, count=n)
    base = np.zeros(n, dtype=np.int64)
    np.cumsum(sizes[:-1], out=base[1:])
    add_v5_joined(np.frombuffer(b"".join(datas), dtype=np.uint8), sizes, base, stats, groups)


def add_v5_joined(
    buf: np.ndarray, sizes: np.ndarray, base: np.ndarray, stats: list[dict[str, int]], groups: dict[int, Group]
) -> None:
    """``add_v5_batch`` on datagrams already joined in ``buf``, the i-th of ``sizes[i]`` bytes at ``base[i]``."""
    if len(buf) < _V5_HEADER.size:
        for st in stats:
            bump(st, "truncated")
        return
    # Big-endian header fields read through views with a field at every byte.
    u16 = np.ndarray((len(buf) - 1,), dtype=">u2", buffer=buf, strides=(1,))
    u32 = np.ndarray((len(buf) - 3,), dtype=">u4", buffer=buf, strides=(1,))
    short = sizes < _V5_HEADER.size
    count = np.where(short, 0, u16[np.where(short, 0, base + 2)].astype(np.int64))
    bad_count = ~short & ((count == 0) | (count > _V5_MAX_COUNT))
    truncated = short | (~bad_count & (sizes < _V5_HEADER.size + _V5_RECORD * count))
    bad = bad_count | truncated
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            bump(stats[i], "bad_count" if bad_count[i] else "truncated")
        good = np.flatnonzero(~bad)
        stats = [stats[i] for i in good.tolist()]
        base, count = base[good], count[good]
    if not len(base):
        return
    export = u32[base + 8].astype(np.int64) * 1000 + u32[base + 12].astype(np.int64) // 1_000_000
    uptime = u32[base + 4].astype(np.int64)
    interval = u16[base + 22].astype(np.int64) & 0x3FFF
    interval[interval == 0] = 1
    group = groups.get(V5_GROUP)
    if group is None:
        group = groups[V5_GROUP] = Group(V5_PLAN, _V5_DOMAIN, None, stats[0])
    for factor in sorted_unique(interval).tolist():
        sel = np.flatnonzero(interval == factor)
        recs = gather_records(buf, base[sel] + _V5_HEADER.size, count[sel], V5_PLAN.dtype)
        group.chunks.append((recs, count[sel], export[sel], uptime[sel], factor))
    if len(set(map(id, stats))) == 1:  # one exporter's counters (by identity: equal dicts may be two exporters')
        bump(stats[0], "records", int(count.sum()))
        return
    for st, c in zip(stats, count.tolist(), strict=True):
        st["records"] = st.get("records", 0) + c
