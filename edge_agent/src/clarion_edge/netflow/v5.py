"""NetFlow v5: a fixed 24-byte header and 48-byte records, decoded as if they had a template.

v5 has no templates, options or observation domains, so a datagram only needs its header
checked before its records join the batch's one v5 group.
"""

from __future__ import annotations

import struct

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
