"""Vectorised flow generation: every row of ``Campus.flows`` in a few numpy passes.

Each device gets a heavy-tailed activity level; its rows are split over its role's behaviours
with per-device weights (no two printers behave quite alike), peers are drawn from the role or
remote pools (sticky for servers a client is configured with, popularity-skewed otherwise),
and volumes and times come from per-behaviour distributions. No Python loop runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clarion.synth.behaviours import DB_PORTS, NOISE_PORTS, REMOTE_GROUPS, Use
from clarion.synth.model import DAY_MS, FLOW_ROW_DTYPE, CampusSpec
from clarion.synth.profiles import BEHAVIOURS
from clarion.synth.roles import ICMP, ROLES, SECONDARY_SHARE, TCP, UDP

HOUR_MS = 3_600_000
TIME_PROFILES = ("office", "always", "night", "day")
_HOURS = {
    "office": [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 2, 6, 9, 9, 8, 6, 8, 9, 8, 6, 3, 1.5, 1, 0.8, 0.6, 0.4, 0.3],
    # A device that leaves or sleeps at night (laptops, phones): nothing between 21:00 and 06:00.
    "day": [0.0] * 6 + [0.3, 2, 6, 9, 9, 8, 6, 8, 9, 8, 6, 3, 1.5, 1, 0.5] + [0.0] * 3,
    "always": [0.8] * 7 + [1.2] * 12 + [0.8] * 5,
    "night": [1, 6, 8, 8, 6, 3, 1] + [0.2] * 15 + [0.5, 1],
}
_FALLBACK = Use("net:web", TCP, 443, 0.0, size=20_000, spread=1.5, pkt=800, fpr=2, dur=5_000, fanout=0)


def make_remote_hosts(n: int, rng: np.random.Generator) -> list[str]:
    """Public-looking addresses from the documentation and benchmarking ranges (never real targets)."""
    doc = [f"{net}.{h}" for net in ("192.0.2", "198.51.100", "203.0.113") for h in range(1, 255)]
    bench_size = 2 * 65_536 - 2  # 198.18.0.0/15 without its first and last address
    picks = rng.choice(len(doc) + bench_size, size=n, replace=False)
    out = []
    for p in picks.tolist():
        if p < len(doc):
            out.append(doc[p])
        else:
            v = p - len(doc) + 1
            out.append(f"198.{18 + (v >> 16)}.{(v >> 8) & 0xFF}.{v & 0xFF}")
    return out


def remote_group_pools(n_remote: int) -> dict[str, np.ndarray]:
    """Node ids (-1 - k) of the remote hosts in each group; every group has at least one."""
    fractions = np.cumsum([f for _, f in REMOTE_GROUPS])
    bounds = np.floor(np.concatenate([[0.0], fractions / fractions[-1]]) * n_remote).astype(np.int64)
    pools = {}
    for i, (name, _) in enumerate(REMOTE_GROUPS):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        ks = np.arange(lo, hi) if hi > lo else np.array([lo % n_remote])
        pools[name] = (-1 - ks).astype(np.int64)
    return pools


@dataclass
class _Table:
    """Every behaviour of every role as parallel arrays, indexed by a global behaviour id."""

    uses: list[Use]
    role: np.ndarray
    start: np.ndarray  # first behaviour id of each role
    pool_off: np.ndarray
    pool_len: np.ndarray
    pools: np.ndarray
    available: np.ndarray

    def col(self, name: str, dtype: str) -> np.ndarray:
        return np.array([getattr(u, name) for u in self.uses], dtype=dtype)


def _table(role_idx: np.ndarray, second_idx: np.ndarray, n_remote: int) -> _Table:
    uses: list[Use] = []
    role: list[int] = []
    start = []
    for r, spec_role in enumerate(ROLES):
        start.append(len(uses))
        for u in (*BEHAVIOURS[spec_role.name], _FALLBACK):
            uses.append(u)
            role.append(r)
    pools_by_peer = {f"net:{k}": v for k, v in remote_group_pools(n_remote).items()}
    for r, spec_role in enumerate(ROLES):
        pools_by_peer[spec_role.name] = np.flatnonzero((role_idx == r) | (second_idx == r)).astype(np.int64)
    names = sorted({u.peer for u in uses})
    offsets, chunks, pos = {}, [], 0
    for name in names:
        offsets[name] = pos
        chunks.append(pools_by_peer[name])
        pos += len(pools_by_peer[name])
    pool_len = np.array([len(pools_by_peer[u.peer]) for u in uses], dtype=np.int64)
    own = np.array([u.peer == ROLES[r].name for u, r in zip(uses, role, strict=True)])
    available = pool_len >= np.where(own, 2, 1)
    return _Table(
        uses=uses,
        role=np.array(role, dtype=np.int64),
        start=np.array(start, dtype=np.int64),
        pool_off=np.array([offsets[u.peer] for u in uses], dtype=np.int64),
        pool_len=pool_len,
        pools=np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64),
        available=available,
    )


def generate_flows(
    spec: CampusSpec,
    role_idx: np.ndarray,
    second_idx: np.ndarray,
    db_port: np.ndarray,
    n_remote: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """All flow rows of the campus, sorted by first_ms (ties keep generation order), and the scanners.

    ``second_idx`` is the second role of devices doing two jobs (-1 for none): they use its
    services for part of their rows and are served to clients as that role too.
    """
    n = len(role_idx)
    act = np.array([r.activity for r in ROLES])[role_idx] * rng.lognormal(0.0, 0.7, size=n)
    act[rng.random(n) < spec.quiet_share] *= 0.1
    prob = act / act.sum()
    total = spec.total_rows
    n_noise = int(rng.binomial(total, spec.noise))
    counts = rng.multinomial(total - n_noise, prob)

    # A device doing a second job acts as two "actors": its own role and the second one.
    sec_dev = np.flatnonzero(second_idx >= 0)
    sec_counts = rng.binomial(counts[sec_dev], SECONDARY_SHARE)
    counts[sec_dev] -= sec_counts
    actor_role = np.concatenate([role_idx, second_idx[sec_dev]])
    actor_dev = np.concatenate([np.arange(n), sec_dev])

    table = _table(role_idx, second_idx, n_remote)
    actor, bid = _choose_behaviours(actor_role, np.concatenate([counts, sec_counts]), table, rng)
    owner = actor_dev[actor]
    days = _day_weights(spec, role_idx, rng)
    main = _rows_for(spec, owner, bid, table, days, db_port, rng)
    clients = np.flatnonzero(~np.array([r.datacenter for r in ROLES])[role_idx])
    n_scan = min(len(clients), max(1, n // 2_000)) if n_noise else 0
    scanners = np.sort(rng.choice(clients, size=n_scan, replace=False)) if n_scan else np.zeros(0, np.int64)
    noise = _noise_rows(spec, n_noise, prob, days, n_remote, scanners, rng)
    order = np.argsort(np.concatenate([main["first_ms"], noise["first_ms"]]), kind="stable")
    rows = np.empty(total, dtype=FLOW_ROW_DTYPE)
    for name in FLOW_ROW_DTYPE.names or ():
        rows[name] = np.concatenate([main[name], noise[name]])[order]
    return rows, scanners


def _choose_behaviours(
    role_idx: np.ndarray, counts: np.ndarray, table: _Table, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Owning actor and behaviour id of each row, with per-actor behaviour mixes."""
    order = np.argsort(role_idx, kind="stable")
    owner = np.repeat(order, counts[order])
    bid = np.empty(len(owner), dtype=np.int64)
    row_at = 0
    dev_at = 0
    for r in range(len(ROLES)):
        n_r = int(np.count_nonzero(role_idx == r))
        devs = order[dev_at : dev_at + n_r]
        dev_at += n_r
        m = int(counts[devs].sum())
        if m == 0:
            continue
        ids = np.arange(table.start[r], table.start[r + 1] if r + 1 < len(ROLES) else len(table.uses))
        base = np.array([table.uses[i].weight for i in ids]) * table.available[ids]
        p = np.array([table.uses[i].p for i in ids])
        has = rng.random((n_r, len(ids))) < p
        for alt in sorted({table.uses[i].alt for i in ids} - {""}):
            cols = np.flatnonzero([table.uses[i].alt == alt for i in ids])
            odds = np.cumsum(p[cols]) / p[cols].sum()
            pick = np.minimum(np.searchsorted(odds, rng.random(n_r), side="right"), len(cols) - 1)
            has[:, cols] = pick[:, None] == np.arange(len(cols))[None, :]
        w = base * has * rng.lognormal(0.0, 0.4, size=(n_r, len(ids)))
        empty = w.sum(axis=1) <= 0
        w[empty, -1] = 1.0  # the fallback behaviour, for devices with nothing else to do
        c = counts[devs]
        # Every behaviour a device has shows up at least once (a daily check-in happens however quiet the
        # day); a device with fewer rows than behaviours keeps its heaviest ones. The rest follow the weights.
        rank = np.argsort(np.argsort(-w, axis=1, kind="stable"), axis=1, kind="stable")
        sure = (w > 0) & (rank < c[:, None])
        sure_dev, sure_col = np.nonzero(sure)
        rest = c - sure.sum(axis=1)
        cum = np.cumsum(w, axis=1)
        cum /= cum[:, -1:]
        cum[:, -1] = 1.0
        flat = (cum + np.arange(n_r)[:, None]).ravel()
        local = np.repeat(np.arange(n_r), rest)
        pick = np.searchsorted(flat, local + rng.random(len(local)), side="right") - local * len(ids)
        pick = np.minimum(pick, len(ids) - 1)
        by_dev = np.argsort(np.concatenate([sure_dev, local]), kind="stable")
        bid[row_at : row_at + m] = ids[np.concatenate([sure_col, pick])[by_dev]]
        row_at += m
    return owner, bid


def _rows_for(
    spec: CampusSpec,
    owner: np.ndarray,
    bid: np.ndarray,
    table: _Table,
    days: np.ndarray,
    db_port: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    m = len(owner)
    n = len(db_port)
    aff = rng.integers(0, 2**31, size=n)
    salt = rng.integers(0, 2**31, size=len(table.uses))
    fanout = table.col("fanout", "i8")[bid]
    plen = table.pool_len[bid]
    off = table.pool_off[bid]
    fixed = (aff[owner] + salt[bid] + np.floor(rng.random(m) * np.maximum(fanout, 1)).astype(np.int64)) % np.maximum(
        plen, 1
    )
    # Remote hosts are popularity-skewed (u**2 favours the first of a group), local peers uniform.
    u = rng.random(m)
    u = np.where(np.array([u.peer.startswith("net:") for u in table.uses])[bid], u * u, u)
    anyp = np.minimum(np.floor(plen * u).astype(np.int64), plen - 1)
    pos = np.where(fanout > 0, fixed, anyp)
    peer = table.pools[off + pos]
    same = peer == owner
    if same.any():
        peer[same] = table.pools[off[same] + (pos[same] + 1) % plen[same]]
        # Only in a degenerate campus (a one-device pool holding the owner itself): talk to the internet.
        peer[peer == owner] = -1

    server = table.col("server", "?")[bid]
    src = np.where(server, peer, owner)
    dst = np.where(server, owner, peer)
    port = table.col("port", "i8")[bid]
    hi = table.col("port_hi", "i8")[bid]
    ranged = hi > port
    port[ranged] += 2 * np.floor(rng.random(int(ranged.sum())) * ((hi[ranged] - port[ranged]) // 2 + 1)).astype(
        np.int64
    )
    is_db = table.col("db", "?")[bid] & (peer >= 0)
    port[is_db] = db_port[peer[is_db]]
    port[port == 0] = DB_PORTS[0]  # a database behaviour whose peer fell back to a remote host

    flows = 1 + rng.poisson(np.maximum(table.col("fpr", "f8")[bid] - 1.0, 0.0))
    per_flow = table.col("size", "f8")[bid] * np.exp(table.col("spread", "f8")[bid] * rng.standard_normal(m))
    pkt = table.col("pkt", "f8")[bid] * (0.8 + 0.4 * rng.random(m))
    dur = table.col("dur", "f8")[bid] * rng.lognormal(0.0, 1.0, size=m)
    times = np.array(
        [TIME_PROFILES.index(u.time or ROLES[r].time) for u, r in zip(table.uses, table.role, strict=True)]
    )
    first = _start_times(spec, owner, times[bid], days, rng)
    return _assemble(spec, src, dst, table.col("proto", "u1")[bid], port, flows, per_flow, pkt, first, dur)


def _day_weights(spec: CampusSpec, role_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per device, cumulative weights of the days it is active (absent days, quiet weekends)."""
    n = len(role_idx)
    weekday0 = (spec.start_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
    weekend = ((weekday0 + np.arange(spec.days)) % 7) >= 5
    presence = np.array([r.presence for r in ROLES])[role_idx]
    present = rng.random((n, spec.days)) < presence[:, None]
    present[np.arange(n), rng.integers(0, spec.days, size=n)] = True  # every device shows up at least once
    factor = np.array([r.weekend for r in ROLES])[role_idx]
    w = present * np.where(weekend[None, :], factor[:, None], 1.0)
    cum = np.cumsum(w, axis=1)
    cum /= cum[:, -1:]
    cum[:, -1] = 1.0
    return cum


def _start_times(
    spec: CampusSpec, owner: np.ndarray, profile: np.ndarray, days: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """First-seen times: a day the owner is active, an hour of the row's profile (office, always, night)."""
    m = len(profile)
    flat = (days + np.arange(len(days))[:, None]).ravel()
    day = np.searchsorted(flat, owner + rng.random(m), side="right") - owner * spec.days
    day = np.minimum(day, spec.days - 1)
    hour = np.empty(m, dtype=np.int64)
    for p, name in enumerate(TIME_PROFILES):
        rows = np.flatnonzero(profile == p)
        hours = np.array(_HOURS[name], dtype=np.float64)
        hour[rows] = np.searchsorted(np.cumsum(hours / hours.sum()), rng.random(len(rows)), side="right")
    hour = np.minimum(hour, 23)
    within = np.floor(rng.random(m) * HOUR_MS).astype(np.int64)
    first: np.ndarray = spec.start_ms + day * DAY_MS + hour * HOUR_MS + within
    return first


def _assemble(
    spec: CampusSpec,
    src: np.ndarray,
    dst: np.ndarray,
    proto: np.ndarray,
    port: np.ndarray,
    flows: np.ndarray,
    per_flow: np.ndarray,
    pkt: np.ndarray,
    first: np.ndarray,
    dur: np.ndarray,
) -> dict[str, np.ndarray]:
    """Columns with consistent counters (>= 40 bytes a packet, >= 1 packet a flow) inside one window."""
    out = {"src": src, "dst": dst, "protocol": proto, "port": port}
    fl = flows.astype(np.uint64)
    byt = np.maximum(np.round(per_flow * flows), 60.0 * flows).astype(np.uint64)
    packets = np.maximum(np.round(byt / pkt).astype(np.uint64), fl)
    out["bytes"] = byt
    out["packets"] = np.minimum(packets, byt // np.uint64(40))
    out["flows"] = flows
    out["first_ms"] = first
    span_end = spec.start_ms + spec.days * DAY_MS
    window_end = np.minimum(spec.start_ms + ((first - spec.start_ms) // spec.window_ms + 1) * spec.window_ms, span_end)
    out["last_ms"] = np.minimum(first + dur.astype(np.int64), window_end - 1)
    return out


def _noise_rows(
    spec: CampusSpec,
    m: int,
    prob: np.ndarray,
    days: np.ndarray,
    n_remote: int,
    scanners: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Random extra traffic (odd ports, stray peers) and a few scanners sweeping local hosts' low ports."""
    n = len(prob)
    owner = rng.choice(n, size=m, p=prob)
    local = (rng.random(m) < 0.7) & (n > 1)
    peer_local = rng.integers(0, n, size=m)
    peer_local = np.where(peer_local == owner, (peer_local + 1) % n, peer_local)
    peer = np.where(local, peer_local, -1 - rng.integers(0, n_remote, size=m))
    u = rng.random(m)
    proto = np.where(u < 0.8, TCP, np.where(u < 0.97, UDP, ICMP)).astype(np.uint8)
    well_known = np.array(NOISE_PORTS)[rng.integers(0, len(NOISE_PORTS), size=m)]
    port = np.where(rng.random(m) < 0.5, well_known, rng.integers(1024, 65536, size=m))
    port = np.where(proto == ICMP, 2048, port)
    flows = 1 + rng.poisson(0.5, size=m)
    per_flow = 800.0 * np.exp(1.5 * rng.standard_normal(m))
    pkt = 200.0 + 600.0 * rng.random(m)
    first = _start_times(spec, owner, np.full(m, TIME_PROFILES.index("always")), days, rng)
    dur = 500.0 * rng.lognormal(0.0, 1.5, size=m)
    if len(scanners) and n > 1:
        scan = np.flatnonzero(rng.random(m) < 0.15)
        owner[scan] = scanners[rng.integers(0, len(scanners), size=len(scan))]
        target = rng.integers(0, n, size=len(scan))
        peer[scan] = np.where(target == owner[scan], (target + 1) % n, target)
        proto[scan] = TCP
        port[scan] = rng.integers(1, 1025, size=len(scan))
        flows[scan] = 1
        per_flow[scan] = 60.0
        pkt[scan] = 60.0
        dur[scan] = 5.0
    return _assemble(spec, owner, peer, proto, port, flows, per_flow, pkt, first, dur)
