"""Ingest benchmark: FLOWS_TO edges/s end to end vs the raw store ceiling, in the same run.

End to end: EdgeGraph JSON over real HTTP (several agents in parallel, the real sender) into
``clarion serve`` running in its own process on the embedded FalkorDB. Raw ceiling: the same
device and FLOWS_TO rows as bare ``UNWIND ... MERGE`` statements sent straight to the same
FalkorDB server (no HTTP, validation, batch record or exactly-once lookup), one writer.

    .venv/bin/python tests/benchmarks/ingest.py [--edges 300000] [--batch 10000] [--runs 5]

Prints progress, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from falkordb import FalkorDB

from clarion.ingest.transform import prepare
from clarion.store.falkordb_store import params_header
from clarion_edge import wire
from clarion_edge.sender import Sender

T0 = 1_793_577_600_000
# rows as clarion.ingest.transform makes them: devices [uid, kind, mac, ip, local], flows [src, dst, protocol,
# port, bytes, packets, flows, first_seen, last_seen]
RAW_DEVICES = """UNWIND $devices AS n MERGE (d:Device {uid: n[0]}) ON CREATE SET d.kind = n[1]
SET d.mac = n[2], d.ip = n[3], d.local = n[4]"""
RAW_FLOWS = """UNWIND $flows AS f MATCH (a:Device {uid: f[0]}) MATCH (b:Device {uid: f[1]})
MERGE (a)-[e:FLOWS_TO {protocol: f[2], port: f[3], day: $day}]->(b)
SET e.bytes = coalesce(e.bytes, 0) + f[4], e.packets = coalesce(e.packets, 0) + f[5],
    e.flows = coalesce(e.flows, 0) + f[6], e.last_seen = f[8]"""


def make_graphs(total_edges: int, batch: int, agents: int, seed: int) -> list[wire.EdgeGraph]:
    """Per-switch windows as agents send them: local devices talking to servers and the internet."""
    rng = random.Random(seed)
    ports = [(6, 443), (6, 80), (17, 53), (6, 445), (6, 88), (6, 9100), (17, 161), (6, 1433), (6, 3389), (17, 123)]
    servers = [f"02:aa:00:00:{i >> 8:02x}:{i & 255:02x}" for i in range(500)]
    remote = [f"203.0.{i >> 8}.{i & 255}" for i in range(1, 3000)]
    graphs: list[wire.EdgeGraph] = []
    seqs = dict.fromkeys(range(agents), 0)
    made = 0
    while made < total_edges:
        a = len(graphs) % agents
        seqs[a] += 1
        n = min(batch, total_edges - made)
        local = [f"02:{a:02x}:{seqs[a] % 256:02x}:00:{i >> 8:02x}:{i & 255:02x}" for i in range(max(50, n // 8))]
        keys: set[tuple[str, str, int, int]] = set()
        while len(keys) < n:
            src = rng.choice(local)
            dst = rng.choice(servers) if rng.random() < 0.7 else rng.choice(remote)
            proto, port = rng.choice(ports)
            keys.add((src, dst, proto, port))
        used = {k[0] for k in keys} | {k[1] for k in keys}
        nodes: list[wire.Node] = [
            wire.Device(mac=u, ips=[f"10.{a}.{i >> 8 & 255}.{i & 255}"]) if ":" in u and not u.startswith("203.")
            else wire.IpEndpoint(ip=u)
            for i, u in enumerate(sorted(used))
        ]  # fmt: skip
        start = T0 + seqs[a] * 60_000
        edges: list[wire.Edge] = [
            wire.FlowsTo(src=s, dst=d, protocol=p, port=q, bytes=rng.randint(100, 10**6), packets=rng.randint(1, 900),
                         flows=rng.randint(1, 20), first_seen=start, last_seen=start + 59_000)
            for s, d, p, q in sorted(keys)
        ]  # fmt: skip
        graphs.append(
            wire.EdgeGraph(
                schema_version=1, agent_id=f"bench-{a}", seq=seqs[a],
                switch=wire.SwitchInfo(switch_id=f"sw{a}", name=f"sw{a}"),
                window=wire.Window(start=T0 + seqs[a] * 60_000, end=T0 + seqs[a] * 60_000 + 60_000),
                nodes=nodes, edges=edges,
            ).sealed()
        )  # fmt: skip
        made += n
    return graphs


def start_server(data_dir: Path, tokens: dict[str, str], admin: str) -> tuple[subprocess.Popen[bytes], str]:
    port = 18000 + os.getpid() % 1000
    env = dict(os.environ)
    env.update({
        "CLARION_DATA_DIR": str(data_dir), "CLARION_GRAPH_NAME": "e2e", "CLARION_ADMIN_TOKEN": admin,
        "CLARION_AGENT_TOKENS": ",".join(f"{a}={t}" for a, t in tokens.items()),
    })  # fmt: skip
    env.pop("CLARION_GRAPH_URL", None)
    clarion = Path(sys.executable).with_name("clarion")
    proc = subprocess.Popen(
        [str(clarion), "--log-level", "warning", "serve", "--port", str(port)], env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("clarion serve did not become healthy in 60 s")


def run_e2e(url: str, graphs: list[wire.EdgeGraph], tokens: dict[str, str]) -> float:
    by_agent: dict[str, list[wire.EdgeGraph]] = {}
    for g in graphs:
        by_agent.setdefault(g.agent_id, []).append(g)

    def agent(agent_id: str) -> None:
        with Sender(url, tokens[agent_id], timeout=300, retries=0) as s:
            for g in by_agent[agent_id]:
                r = s.send(g)
                if not (r.acked and r.body.get("applied")):
                    raise RuntimeError(f"{agent_id}#{g.seq}: {r.outcome} {r.error} {r.body}")

    t = time.perf_counter()
    with ThreadPoolExecutor(len(by_agent)) as pool:
        list(pool.map(agent, by_agent))
    return time.perf_counter() - t


def run_raw(sock: str, graph_name: str, graphs: list[wire.EdgeGraph]) -> float:
    db = FalkorDB(unix_socket_path=sock, socket_timeout=600)
    g = db.select_graph(graph_name)
    g.query("CREATE INDEX FOR (d:Device) ON (d.uid)")
    while any(
        r[2] != "OPERATIONAL"
        for r in g.ro_query(
            "CALL db.indexes() YIELD label, properties, status RETURN label, properties, status"
        ).result_set
    ):
        time.sleep(0.05)
    prepared = [prepare(x, 0).params for x in graphs]  # the same rows, prepared outside the clock
    t = time.perf_counter()
    for p in prepared:  # the same (fastest) parameter rendering the server uses
        g.query(params_header({"devices": p["devices"]}) + RAW_DEVICES, timeout=600_000)
        g.query(params_header({"flows": p["flows"], "day": p["day"]}) + RAW_FLOWS, timeout=600_000)
    elapsed = time.perf_counter() - t
    g.delete()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=300_000, help="FLOWS_TO edges per run")
    ap.add_argument("--batch", type=int, default=10_000, help="edges per EdgeGraph")
    ap.add_argument("--agents", type=int, default=4, help="agents sending in parallel")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    e2e_rates, raw_rates = [], []
    for run in range(args.runs):
        graphs = make_graphs(args.edges, args.batch, args.agents, seed=run)
        n_edges = sum(len(g.edges) for g in graphs)
        tokens = {g.agent_id: secrets.token_urlsafe(24) for g in graphs}
        admin = secrets.token_urlsafe(24)
        with tempfile.TemporaryDirectory(prefix="clarion-bench-") as d:
            proc, url = start_server(Path(d), tokens, admin)
            try:
                e2e = run_e2e(url, graphs, tokens)
                raw = run_raw(str(Path(d) / "falkordb.sock"), f"raw{run}", graphs)
                stats = httpx.post(f"{url}/graphql", json={"query": "{ stats { flowEdges } }"},
                                   headers={"Authorization": f"Bearer {admin}"}, timeout=120).json()  # fmt: skip
                assert stats["data"]["stats"]["flowEdges"] == n_edges, stats
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        e2e_rates.append(n_edges / e2e)
        raw_rates.append(n_edges / raw)
        print(f"run {run + 1}/{args.runs}: {n_edges} edges  e2e {n_edges / e2e:,.0f}/s  raw {n_edges / raw:,.0f}/s  "
              f"ratio {raw / e2e:.2f}", file=sys.stderr, flush=True)  # fmt: skip
    ratios = [e / r for e, r in zip(e2e_rates, raw_rates, strict=True)]
    print(json.dumps({
        "benchmark": "ingest", "edges_per_run": args.edges, "batch": args.batch, "agents": args.agents,
        "runs": args.runs, "e2e_edges_per_s_median": round(statistics.median(e2e_rates)),
        "raw_edges_per_s_median": round(statistics.median(raw_rates)),
        "ratio_median": round(statistics.median(ratios), 3),
        "e2e_edges_per_s": [round(x) for x in e2e_rates], "raw_edges_per_s": [round(x) for x in raw_rates],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
