"""Identity merge benchmark on the embedded FalkorDB: pxGrid session events/s and a 100k-session bulk download.

Stream: ``--events`` pxGrid-like session events (``--devices`` endpoints, each updated several times: new IPs,
SGT changes, re-authentications, disconnects) in batches of ``--batch`` as the pxGrid service's HttpSink sends
them, merged with ``apply_identity`` (sessions + correlation of the IPs they bound), and once more end to end
through the pxGrid service's ``HttpSink`` and a real uvicorn server. Bulk: ``--bulk`` distinct
sessions (getSessions after a restart) merged into an empty graph in one call. AD: a full snapshot of
``--ad-users`` users merged (the graph half of ``clarion ad sync``; the LDAP read is measured by
``tests/benchmarks/ad_sync.py`` against Samba). Each figure is the median of ``--runs`` runs on a fresh graph.

    .venv/bin/python tests/benchmarks/identity.py [--events 50000] [--bulk 100000] [--runs 3]

Prints progress, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from clarion.identity import IdentityBatch, apply_identity, merge_directory
from clarion.sources.model import ADGroup, ADUser, DirectorySnapshot, SecurityGroup, Session
from clarion.store.falkordb_store import FalkorDBStore

T0 = 1_793_577_600_000
SGTS = [SecurityGroup(value=v, name=n) for v, n in ((4, "Employees"), (5, "Contractors"), (6, "Guests"),
                                                      (8, "Developers"), (15, "BYOD"), (11, "Servers"))]  # fmt: skip


def mac(i: int) -> str:
    return f"02:1d:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"


def session(rng: random.Random, i: int, ts: int, users: int, state: str = "STARTED") -> Session:
    """Endpoint ``i`` as ISE reports it: 802.1X users (two devices per user on average), some MAB."""
    user = None if i % 7 == 0 else f"CORP\\user{rng.randrange(users)}"
    return Session(
        mac=mac(i), ips=(ip_of(i, 0),), username=user, sgt=rng.choice(SGTS).value, switch_id=f"10.0.{i % 200}.1",
        interface=f"GigabitEthernet1/0/{i % 48 + 1}", vlan=10 + i % 20, endpoint_profile="Windows10-Workstation",
        state=state, timestamp_ms=ts,
    )  # fmt: skip


def ip_of(i: int, lease: int) -> str:
    return f"10.{(i >> 16) + 16 * (lease % 8) & 255}.{i >> 8 & 255}.{i & 255}"


def events(devices: int, count: int, seed: int) -> list[Session]:
    """A pxGrid session topic: mostly re-authentications and profiling updates that re-confirm a device's
    identity (80 %), DHCP moves to a new IP (8 %), SGT changes by CoA (4 %), another user logging in (3 %)
    and disconnects (5 %), each device starting from a stable identity."""
    rng = random.Random(seed)
    state = {i: session(rng, i, T0, devices // 2) for i in range(devices)}
    leases = dict.fromkeys(range(devices), 0)
    out = []
    for k in range(count):
        i = rng.randrange(devices)
        s, x, ts = state[i], rng.random(), T0 + 1000 + k * 10
        if x < 0.08:
            leases[i] += 1
            s = dataclasses.replace(s, ips=(ip_of(i, leases[i]),), state="STARTED")
        elif x < 0.12:
            s = dataclasses.replace(s, sgt=rng.choice(SGTS).value, state="STARTED")
        elif x < 0.15:
            s = dataclasses.replace(s, username=f"CORP\\user{rng.randrange(devices // 2)}", state="STARTED")
        elif x < 0.20:
            s = dataclasses.replace(s, state="DISCONNECTED")
        else:
            s = dataclasses.replace(s, state="STARTED")
        state[i] = s = dataclasses.replace(s, timestamp_ms=ts)
        out.append(s)
    return out


def stream(store: FalkorDBStore, count: int, devices: int, batch: int, seed: int) -> float:
    """Events/s after the devices are known (a bulk download first, as the pxGrid service does)."""
    rng = random.Random(seed)
    apply_identity(store, IdentityBatch(security_groups=SGTS, sessions=[session(rng, i, T0, devices // 2)
                                                                        for i in range(devices)]))  # fmt: skip
    items = events(devices, count, seed)
    t0 = time.perf_counter()
    for j in range(0, len(items), batch):
        apply_identity(store, IdentityBatch(sessions=items[j : j + batch]))
    return count / (time.perf_counter() - t0)


def stream_http(store: FalkorDBStore, count: int, devices: int, batch: int, seed: int) -> float:
    """The same stream as the pxGrid service sends it: HttpSink → real uvicorn → POST /api/v1/identity."""
    from pydantic import SecretStr

    from clarion.api.app import create_app
    from clarion.config import Settings
    from clarion.server import BackgroundServer
    from clarion.sources.pxgrid.sink import HttpSink

    rng = random.Random(seed)
    apply_identity(store, IdentityBatch(security_groups=SGTS, sessions=[session(rng, i, T0, devices // 2)
                                                                        for i in range(devices)]))  # fmt: skip
    items = events(devices, count, seed)
    token = "bench-admin-token-0123456789"
    settings = Settings(graph_url=None, admin_token=SecretStr(token))
    with BackgroundServer(create_app(settings, store)) as server:
        sink = HttpSink(server.url, token, batch=batch)
        try:
            t0 = time.perf_counter()
            sink.apply(items)
            return count / (time.perf_counter() - t0)
        finally:
            sink.close()


def bulk(store: FalkorDBStore, n: int, seed: int) -> float:
    rng = random.Random(seed)
    items = [session(rng, i, T0 + i, n // 2) for i in range(n)]
    t0 = time.perf_counter()
    apply_identity(store, IdentityBatch(sessions=items, security_groups=SGTS))
    return time.perf_counter() - t0


def directory(users: int, groups: int, seed: int) -> DirectorySnapshot:
    """A directory like a 10k-user company: groups nested up to four deep, each user in three groups."""
    rng = random.Random(seed)
    dom = "S-1-5-21-100-200-300"
    gs = [
        ADGroup(sid=f"{dom}-{5000 + g}", name=f"group{g}", dn=f"CN=group{g},OU=Groups,DC=corp",
                member_of=(f"{dom}-{5000 + (g - 1) // 4}",) if g else ())
        for g in range(groups)
    ]  # fmt: skip
    us = [
        ADUser(sid=f"{dom}-{20000 + u}", username=f"user{u}", dn=f"CN=user{u},OU=Users,DC=corp",
               display_name=f"User {u}", groups=tuple({f"{dom}-{5000 + rng.randrange(groups)}" for _ in range(3)}))
        for u in range(users)
    ]  # fmt: skip
    return DirectorySnapshot(users=us, groups=gs, highest_usn=1)


def ad_merge(store: FalkorDBStore, users: int, seed: int) -> float:
    """A full AD snapshot merged (and a second full sync with its cleanup): the graph half of ``ad sync``."""
    snap = directory(users, max(50, users // 20), seed)
    t0 = time.perf_counter()
    merge_directory(store, snap, now_ms=T0)
    merge_directory(store, snap, now_ms=T0 + 1)
    return (time.perf_counter() - t0) / 2


def raw_nodes_per_s(store: FalkorDBStore, n: int = 100_000, batch: int = 5_000) -> float:
    """The store's ceiling right now: bare ``UNWIND ... MERGE`` of Device nodes (the load-independent yardstick;
    DESIGN.md measured ≈ 35k nodes/s on an idle machine)."""
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        rows = [[mac(j), T0] for j in range(i, min(n, i + batch))]
        store._graph.query("UNWIND $rows AS r MERGE (d:Device {uid: r[0]}) SET d.last_seen = r[1]", {"rows": rows})
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--bulk", type=int, default=100_000)
    ap.add_argument("--ad-users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    server = FalkorDBStore.embedded(Path(tempfile.mkdtemp(prefix="clarion-bench-id-")), graph="bootstrap")
    rates, http_rates, bulks, ads, raws = [], [], [], [], []
    try:
        for run in range(args.runs):
            g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
            g.ensure_schema()
            rates.append(stream(g, args.events, args.devices, args.batch, seed=run))
            g.clear()
            print(f"run {run + 1}: stream {rates[-1]:,.0f} events/s", file=sys.stderr, flush=True)
            g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
            g.ensure_schema()
            http_rates.append(stream_http(g, args.events, args.devices, args.batch, seed=run))
            g.clear()
            print(f"run {run + 1}: stream over HTTP {http_rates[-1]:,.0f} events/s", file=sys.stderr, flush=True)
            g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
            g.ensure_schema()
            bulks.append(bulk(g, args.bulk, seed=run))
            g.clear()
            print(f"run {run + 1}: bulk {args.bulk:,} sessions in {bulks[-1]:.2f} s", file=sys.stderr, flush=True)
            g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
            g.ensure_schema()
            ads.append(ad_merge(g, args.ad_users, seed=run))
            g.clear()
            g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
            g.ensure_schema()
            raws.append(raw_nodes_per_s(g))
            g.clear()
            print(f"run {run + 1}: raw MERGE ceiling {raws[-1]:,.0f} nodes/s", file=sys.stderr, flush=True)
            print(f"run {run + 1}: AD merge {args.ad_users:,} users in {ads[-1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        server.close()
    out = {
        "stream_events": args.events, "stream_batch": args.batch, "stream_devices": args.devices,
        "stream_events_per_s_median": round(statistics.median(rates)),
        "stream_events_per_s_runs": [round(r) for r in rates],
        "stream_http_events_per_s_median": round(statistics.median(http_rates)),
        "stream_http_events_per_s_runs": [round(r) for r in http_rates],
        "stream_target_events_per_s": 5_000, "bulk_sessions": args.bulk,
        "bulk_seconds_median": round(statistics.median(bulks), 2), "bulk_seconds_runs": [round(b, 2) for b in bulks],
        "bulk_target_seconds": 20, "runs": args.runs,
        "ad_users": args.ad_users, "ad_merge_seconds_median": round(statistics.median(ads), 2),
        "ad_merge_seconds_runs": [round(a, 2) for a in ads],
        "raw_merge_nodes_per_s_median": round(statistics.median(raws)),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "ad_ldap_read": "tests/benchmarks/ad_sync.py (needs a Samba DC)",
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
