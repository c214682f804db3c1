"""Clustering benchmark, end to end against the store: snapshot read, features, HDBSCAN, write-back.

For each size a synthetic campus is merged into an embedded FalkorDB (not timed). Each timed run
is a fresh child process connected to that store, doing what the clustering job does; it
reports wall seconds (after one untimed warm-up run that fills the OS caches), the
stage timings, its peak RSS, and ARI against the generator's true roles.

    .venv/bin/python tests/benchmarks/clustering.py [--sizes 10000 50000 100000] [--runs 3]

Prints progress, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clarion.ingest.merger import merge
from clarion.store.falkordb_store import FalkorDBStore
from clarion.synth import CampusSpec, generate_campus


def child(sock: str, graph: str, devices: int, seed: int) -> None:
    """One timed run in this (fresh) process; prints a JSON line."""
    from clarion.analytics.model import ClusteringParams
    from clarion.analytics.quality import adjusted_rand
    from clarion.jobs.clustering import cluster_graph

    store = FalkorDBStore(graph=graph, socket_path=sock, timeout_s=600)
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    last = [t0, "start"]

    def progress(fraction: float, message: str) -> None:
        now = time.perf_counter()
        stages[str(last[1]).split(":")[0][:40]] = stages.get(str(last[1]).split(":")[0][:40], 0) + now - float(last[0])
        last[0], last[1] = now, message

    run = cluster_graph(store, ClusteringParams(), progress=progress)
    seconds = time.perf_counter() - t0
    campus = generate_campus(CampusSpec(seed=seed, switches=max(4, devices // 400), devices=devices))
    labels = run.labels_by_device()
    truth = {d.mac or d.ip: d.role for d in campus.devices}
    keys = [k for k in labels if k in truth]
    ari = adjusted_rand([truth[k] for k in keys], [labels[k] for k in keys])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "clusters": len(run.clusters),
                      "noise": len(run.noise), "ari": ari, "timings": run.timings}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", nargs=4, metavar=("SOCK", "GRAPH", "DEVICES", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sock, graph, devices, seed = args.child
        child(sock, graph, int(devices), int(seed))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="clarion-bench-clu-") as d:
        store = FalkorDBStore.embedded(Path(d), "bootstrap", timeout_s=600)
        sock = store.target
        try:
            for size in args.sizes:
                graph = f"campus{size}"
                g = store.with_graph(graph)
                g.ensure_schema()
                t = time.perf_counter()
                campus = generate_campus(CampusSpec(seed=args.seed, switches=max(4, size // 400), devices=size))
                edges = 0
                for eg in campus.edge_graphs(agent_id_prefix="edge-"):
                    merge(g, eg)
                    edges += len(eg.edges)
                print(f"{size} devices: merged {edges} edges in {time.perf_counter() - t:.0f} s (not timed)",
                      file=sys.stderr, flush=True)  # fmt: skip
                runs = []
                for i in range(args.runs + 1):  # one untimed warm-up run first
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", sock, graph, str(size), str(args.seed)],
                        capture_output=True, text=True, check=False, timeout=3600,
                    )  # fmt: skip
                    if out.returncode != 0:
                        raise SystemExit(f"run {i} failed:\n{out.stderr[-4000:]}")
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    label = "warm-up" if i == 0 else f"run {i}"
                    print(f"  {label}: {r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB, {r['clusters']} clusters, "
                          f"ARI {r['ari']:.3f}", file=sys.stderr, flush=True)  # fmt: skip
                    if i:
                        runs.append(r)
                results.append({
                    "devices": size, "edges": edges,
                    "seconds_median": round(statistics.median(r["seconds"] for r in runs), 2),
                    "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in runs)),
                    "ari_median": round(statistics.median(r["ari"] for r in runs), 3),
                    "clusters": runs[-1]["clusters"], "noise": runs[-1]["noise"],
                    "seconds": [round(r["seconds"], 2) for r in runs],
                })  # fmt: skip
                g.drop_graph()
        finally:
            store.close()
    print(json.dumps({"benchmark": "clustering_end_to_end", "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()
