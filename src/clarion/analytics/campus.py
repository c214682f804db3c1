"""The synthetic campus as a GraphSnapshot, the way the store's bulk read would return it.

For tests and benchmarks. It carries what the graph holds (flows, AD groups, ISE profile,
current SGT) and never the generator's role, which stays behind ``campus.true_role`` for scoring.
"""

from __future__ import annotations

import numpy as np

from clarion.analytics.snapshot import EDGE_DTYPE, GraphSnapshot
from clarion.synth import Campus
from clarion.synth.identity import all_groups_of

DAY_MS = 86_400_000


def snapshot_from_campus(campus: Campus, identity: bool = True) -> GraphSnapshot:
    """Devices first (in campus order), then remote hosts; edges as the flow rows."""
    n_dev = len(campus.devices)
    ids = [d.key for d in campus.devices] + list(campus.remote_hosts)
    local = np.zeros(len(ids), dtype=bool)
    local[:n_dev] = True
    f = campus.flows
    edges = np.zeros(len(f), dtype=EDGE_DTYPE)
    for name in ("src", "dst"):
        col = f[name].astype(np.int64)
        edges[name] = np.where(col >= 0, col, n_dev - 1 - col)
    for name in ("protocol", "port", "bytes", "packets", "flows"):
        edges[name] = f[name]
    edges["first_seen"] = f["first_ms"]
    edges["last_seen"] = f["last_ms"]
    edges["day"] = f["first_ms"] // DAY_MS
    if not identity:
        return GraphSnapshot(device_ids=ids, local=local, edges=edges)
    users = {u.username: u for u in campus.users}
    groups: list[list[str]] = []
    for d in campus.devices:
        user = users.get(d.user) if d.user else None
        groups.append(sorted(all_groups_of(user)) if user else [])
    n_remote = len(campus.remote_hosts)
    profile: list[str | None] = [d.profile for d in campus.devices] + [None] * n_remote
    sgt: list[int | None] = [d.sgt for d in campus.devices] + [None] * n_remote
    return GraphSnapshot(
        device_ids=ids,
        local=local,
        edges=edges,
        ad_groups=groups + [[] for _ in range(n_remote)],
        profile=profile,
        sgt=sgt,
        sgt_names={s.value: s.name for s in campus.sgts},
    )
