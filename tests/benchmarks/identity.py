"""Identity merge benchmark on the embedded FalkorDB: pxGrid session events/s and a 100k-session bulk download.

Stream: ``--events`` pxGrid-like session events (``--devices`` endpoints, each updated several times: new IPs,
SGT changes, re-authentications, disconnects) in batches of ``--batch``, after the devices' bulk download.
Measured two ways: end to end as a deployment runs it (the pxGrid service's ``HttpSink`` posting to
``POST /api/v1/identity`` of a real uvicorn API server in its own process, which merges into FalkorDB; the bulk
download went the same way first, so the server's identity cache is as warm as in production), and the
server's merge alone (``apply_identity`` in-process). Bulk: ``--bulk`` distinct sessions (getSessions after a
restart) merged into an empty graph, in one ``apply_identity`` call and through ``HttpSink`` → the API. Every
stream run is checked: each device's ``identity_ts`` in the graph must be the time of its last event. CPU
seconds (this process + the API process + FalkorDB) are printed too: they depend far less on the machine's
other load than wall time. AD: a full snapshot of ``--ad-users`` users merged (the graph half of ``clarion ad
sync``; the LDAP read is measured by ``tests/benchmarks/ad_sync.py`` against Samba). Each figure is the median
of ``--runs`` runs on a fresh graph.

    .venv/bin/python tests/benchmarks/identity.py [--events 50000] [--bulk 100000] [--runs 3]

Prints progress, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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


@dataclasses.dataclass
class Run:
    """One timed run: wall seconds and CPU seconds of every process that worked (client, API, FalkorDB)."""

    n: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.n / self.wall


def cpu_now(store: FalkorDBStore, *extra: float) -> float:
    """CPU seconds so far of this process and of the FalkorDB server (plus ``extra``, e.g. the API process)."""
    embedded = store._embedded
    assert embedded is not None
    assert embedded.proc is not None
    with open(f"/proc/{embedded.proc.pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return time.process_time() + server + sum(extra)


def check_merged(store: FalkorDBStore, items: list[Session]) -> None:
    """Every device's confirmation time is its last event's: the events reached the graph, in order."""
    want: dict[str, int] = {}
    for s in items:
        want[s.mac] = max(want.get(s.mac, 0), s.timestamp_ms)
    rows = store._graph.query("MATCH (d:Device) WHERE d.kind = 'mac' RETURN d.uid, d.identity_ts").result_set
    have = {str(uid): ts for uid, ts in rows}
    wrong = [m for m, ts in want.items() if have.get(m) != ts]
    if wrong:
        raise SystemExit(f"{len(wrong)} devices do not show their last event, e.g. {wrong[0]}: {have.get(wrong[0])}")


def preload(rng: random.Random, devices: int) -> list[Session]:
    return [session(rng, i, T0, devices // 2) for i in range(devices)]


def stream(store: FalkorDBStore, root: FalkorDBStore, count: int, devices: int, batch: int, seed: int) -> Run:
    """Events/s of the server's merge alone, after the devices are known (a bulk download first)."""
    rng = random.Random(seed)
    apply_identity(store, IdentityBatch(security_groups=SGTS, sessions=preload(rng, devices)))
    items = events(devices, count, seed)
    t0, c0 = time.perf_counter(), cpu_now(root)
    for j in range(0, len(items), batch):
        apply_identity(store, IdentityBatch(sessions=items[j : j + batch]))
    run = Run(count, time.perf_counter() - t0, cpu_now(root) - c0)
    check_merged(store, items)
    return run


TOKEN = "bench-admin-token-0123456789"


def serve_api(socket_path: str, graph: str, conn: Connection) -> None:
    """The API server in its own process (as deployed): reports its URL, serves until told, reports its CPU."""
    from pydantic import SecretStr

    from clarion.api.app import create_app
    from clarion.config import Settings
    from clarion.server import BackgroundServer

    store = FalkorDBStore(graph=graph, socket_path=socket_path)
    with BackgroundServer(create_app(Settings(graph_url=None, admin_token=SecretStr(TOKEN)), store)) as server:
        conn.send(server.url)
        while conn.recv() == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
    store._db.connection.close()


class ApiProcess:
    """Starts ``serve_api`` in a spawned process on the store's graph; ``cpu()`` asks it for its CPU seconds."""

    def __init__(self, store: FalkorDBStore) -> None:
        self.conn, child = mp.get_context("spawn").Pipe()
        self.proc = mp.get_context("spawn").Process(target=serve_api, args=(store.target, store.graph_name, child))
        self.proc.start()
        if not self.conn.poll(120):
            raise SystemExit("the API process did not start within 120 s")
        self.url: str = self.conn.recv()

    def cpu(self) -> float:
        self.conn.send("cpu")
        value: float = self.conn.recv()
        return value

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(60)


def stream_http(
    store: FalkorDBStore,
    root: FalkorDBStore,
    count: int,
    devices: int,
    batch: int,
    seed: int,
    window: int = 2,
    flush: int = 0,
) -> Run:
    """The deployed path: the pxGrid service's HttpSink → uvicorn (its own process) → POST /api/v1/identity."""
    from clarion.sources.pxgrid.sink import HttpSink

    rng = random.Random(seed)
    api = ApiProcess(store)
    # stream requests of --batch sessions (the pxGrid service's max_batch); a backlog handed over at once, so up to
    # --window of them are in flight
    sink = HttpSink(api.url, TOKEN, batch=batch, bulk_batch=batch, window=window, timeout_s=300)
    try:
        sink.apply_security_groups(SGTS, [])
        sink.apply(preload(rng, devices))  # the bulk download after a start goes through the same sink
        items = events(devices, count, seed)
        t0, c0 = time.perf_counter(), cpu_now(root, api.cpu())
        step = flush or len(items)  # the service hands over one flush (joined queued messages) per call
        for j in range(0, len(items), step):
            sink.apply(items[j : j + step])
        run = Run(count, time.perf_counter() - t0, cpu_now(root, api.cpu()) - c0)
    finally:
        sink.close()
        api.close()
    check_merged(store, items)
    return run


def bulk(store: FalkorDBStore, root: FalkorDBStore, n: int, seed: int) -> Run:
    rng = random.Random(seed)
    items = [session(rng, i, T0 + i, n // 2) for i in range(n)]
    t0, c0 = time.perf_counter(), cpu_now(root)
    apply_identity(store, IdentityBatch(sessions=items, security_groups=SGTS))
    run = Run(n, time.perf_counter() - t0, cpu_now(root) - c0)
    check_merged(store, items)
    return run


def bulk_http(store: FalkorDBStore, root: FalkorDBStore, n: int, bulk_batch: int, seed: int, window: int = 2) -> Run:
    """The bulk download as the pxGrid service sends it: the consumer hands the HttpSink ``BACKFILL_BATCH``
    sessions at a time, which it posts as requests of ``bulk_batch`` to the API in its own process."""
    from clarion.sources.pxgrid.consumer import BACKFILL_BATCH
    from clarion.sources.pxgrid.sink import HttpSink

    rng = random.Random(seed)
    items = [session(rng, i, T0 + i, n // 2) for i in range(n)]
    api = ApiProcess(store)
    sink = HttpSink(api.url, TOKEN, batch=min(1_000, bulk_batch), bulk_batch=bulk_batch, window=window, timeout_s=300)
    try:
        t0, c0 = time.perf_counter(), cpu_now(root, api.cpu())
        sink.apply_security_groups(SGTS, [])
        for j in range(0, n, BACKFILL_BATCH):
            sink.apply(items[j : j + BACKFILL_BATCH])
        run = Run(n, time.perf_counter() - t0, cpu_now(root, api.cpu()) - c0)
    finally:
        sink.close()
        api.close()
    check_merged(store, items)
    return run


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


def fresh(server: FalkorDBStore) -> FalkorDBStore:
    g = server.with_graph(f"bench_{uuid.uuid4().hex[:8]}")
    g.ensure_schema()
    return g


def summary(runs: list[Run], unit: str) -> dict[str, Any]:
    med = statistics.median
    if unit == "events_per_s":
        return {"events_per_s_median": round(med(r.rate for r in runs)),
                "events_per_s_runs": [round(r.rate) for r in runs],
                "events_per_cpu_s_median": round(med(r.n / r.cpu for r in runs))}  # fmt: skip
    return {"seconds_median": round(med(r.wall for r in runs), 2), "seconds_runs": [round(r.wall, 2) for r in runs],
            "cpu_seconds_median": round(med(r.cpu for r in runs), 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--bulk", type=int, default=100_000)
    ap.add_argument("--ad-users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bulk-batch", type=int, default=5_000, help="sessions per request of the deployed bulk")
    ap.add_argument("--window", type=int, default=2, help="HttpSink requests in flight (1: one at a time)")
    ap.add_argument("--stream-flush", type=int, default=None,
                    help="events per sink call in the deployed stream; default: what the pxGrid service hands over "
                    "under a backlog (STREAM_JOIN x --batch); 0: the whole stream in one call")  # fmt: skip
    ap.add_argument("--deployed-only", action="store_true", help="only the HttpSink → API runs (stream and bulk)")
    args = ap.parse_args()
    if args.stream_flush is None:
        from clarion.sources.pxgrid.sink import STREAM_JOIN

        args.stream_flush = STREAM_JOIN * args.batch
    server = FalkorDBStore.embedded(Path(tempfile.mkdtemp(prefix="clarion-bench-id-")), graph="bootstrap")
    load0 = os.getloadavg()[0]
    http: list[Run] = []
    direct: list[Run] = []
    bulks: list[Run] = []
    bulks_http: list[Run] = []
    ads: list[float] = []
    raws: list[float] = []

    def step(run: int, what: str, fn: Any, *a: Any) -> Any:
        g = fresh(server)
        try:
            out = fn(g, *a)
        finally:
            g.drop_graph()
        if isinstance(out, Run):
            figure = f"{out.rate:,.0f} events/s" if "stream" in what else f"{out.n:,} sessions in {out.wall:.2f} s"
            print(f"run {run + 1}: {what}: {figure} ({out.cpu:.2f} CPU s)", file=sys.stderr, flush=True)
        return out

    try:
        for run in range(args.runs):
            ev = (args.events, args.devices, args.batch, run)
            http.append(
                step(
                    run,
                    "stream end to end (HttpSink → API process)",
                    stream_http,
                    server,
                    *ev,
                    args.window,
                    args.stream_flush,
                )
            )
            bulks_http.append(step(run, "bulk end to end (HttpSink → API process)", bulk_http, server, args.bulk,
                                   args.bulk_batch, run, args.window))  # fmt: skip
            if args.deployed_only:
                continue
            direct.append(step(run, "stream, server merge alone", stream, server, *ev))
            bulks.append(step(run, "bulk, one apply_identity", bulk, server, args.bulk, run))
            ads.append(step(run, "AD merge", ad_merge, args.ad_users, run))
            raws.append(step(run, "raw MERGE", raw_nodes_per_s))
            print(f"run {run + 1}: AD merge {args.ad_users:,} users in {ads[-1]:.2f} s; raw MERGE ceiling "
                  f"{raws[-1]:,.0f} nodes/s", file=sys.stderr, flush=True)  # fmt: skip
    finally:
        server.close()
    ok = {
        "deployed_stream_meets_target": bool(http) and summary(http, "events_per_s")["events_per_s_median"] >= 5_000,
        "deployed_bulk_meets_target": bool(bulks_http) and summary(bulks_http, "seconds")["seconds_median"] < 20,
    }
    out = {
        "stream_events": args.events, "stream_batch": args.batch, "stream_devices": args.devices, "runs": args.runs,
        "bulk_sessions": args.bulk, "deployed_bulk_batch": args.bulk_batch, "deployed_window": args.window,
        "deployed_stream_flush": args.stream_flush or args.events,
        "stream_target_events_per_s": 5_000, "bulk_target_seconds": 20, **ok,
        # deployed: HttpSink → uvicorn API process → merge (what a user runs); merge_only: apply_identity in-process
        **({f"deployed_stream_{k}": v for k, v in summary(http, "events_per_s").items()} if http else {}),
        **({f"deployed_bulk_{k}": v for k, v in summary(bulks_http, "seconds").items()} if bulks_http else {}),
        **({f"merge_only_stream_{k}": v for k, v in summary(direct, "events_per_s").items()} if direct else {}),
        **({f"merge_only_bulk_{k}": v for k, v in summary(bulks, "seconds").items()} if bulks else {}),
        **({"ad_users": args.ad_users, "ad_merge_seconds_median": round(statistics.median(ads), 2),
            "ad_merge_seconds_runs": [round(a, 2) for a in ads],
            "raw_merge_nodes_per_s_median": round(statistics.median(raws))} if ads else {}),
        "load_average_1m_start": round(load0, 1), "load_average_1m_end": round(os.getloadavg()[0], 1),
        "cpu_count": os.cpu_count(),
        "conditions": "embedded FalkorDB; deployed_*: HttpSink in this process, uvicorn API in a spawned process "
        "(stream: bulk download sent through it first); merge_only_*: apply_identity in this process; CPU s = this "
        "process + API process + FalkorDB; every run checked against the graph; medians of --runs",
        "ad_ldap_read": "tests/benchmarks/ad_sync.py (needs a Samba DC)",
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
