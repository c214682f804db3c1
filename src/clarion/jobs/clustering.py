"""Clustering against the store: read a snapshot in bulk, run the pure pipeline, write the run back.

The pipeline itself (``clarion.analytics``) never sees a driver; this module is the bridge.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clarion.analytics.model import Cluster, ClusteringParams, ClusteringRun, Member, Reason, Recommendation
from clarion.analytics.snapshot import GraphSnapshot
from clarion.jobs import snapshot_read
from clarion.jobs.runner import Job, JobRunner
from clarion.store.port import GraphStore

Progress = Callable[[float, str], None]
KEEP_RUNS = 5
ALL_DAYS = (0, 10**7)


def _noop(_: float, __: str) -> None:
    return None


def read_snapshot(
    store: GraphStore, day_from: int = ALL_DAYS[0], day_to: int = ALL_DAYS[1], progress: Progress = _noop
) -> GraphSnapshot:
    """Everything clustering reads, in bulk (see ``clarion.jobs.snapshot_read``)."""
    return snapshot_read.read_snapshot(store, day_from, day_to, progress)


def latest_run(store: GraphStore) -> ClusteringRun | None:
    """The newest run, rebuilt from the graph (enough for stable ids and comparisons)."""
    rows = store.read("query/clustering_runs", {"limit": 1})
    return run_from_graph(store, rows[0]["run"]) if rows else None


def run_from_graph(store: GraphStore, run: dict[str, Any]) -> ClusteringRun:
    run_id = str(run["run_id"])
    members: dict[int, list[Member]] = {}
    for cid, uid in store.read_rows("query/run_memberships", {"run_id": run_id})[1]:
        members.setdefault(int(cid), []).append(Member(device_id=str(uid), probability=1.0))
    clusters = [
        cluster_from_node(r["cluster"], members.get(int(r["cluster"]["cluster_id"]), []))
        for r in store.read("query/clusters_of_run", {"run_id": run_id})
    ]
    return ClusteringRun(
        run_id=run_id, params=ClusteringParams(**json.loads(run["params"])), created_ms=int(run["created_ms"]),
        clusters=clusters, noise=[], input_digest=str(run.get("input_digest") or ""),
        next_cluster_id=int(run.get("next_cluster_id") or 0),
    )  # fmt: skip


def cluster_from_node(k: dict[str, Any], members: list[Member]) -> Cluster:
    return Cluster(
        cluster_id=int(k["cluster_id"]), label=str(k["label"]), size=int(k["size"]),
        confidence=float(k["confidence"]), separation=float(k["separation"]),
        reasons=[Reason(**r) for r in json.loads(k["reasons"])], members=members,
        recommendation=Recommendation(
            sgt=None if k.get("rec_sgt") is None else int(k["rec_sgt"]), sgt_name=str(k["rec_sgt_name"]),
            is_new=bool(k["rec_is_new"]), confidence=float(k["rec_confidence"]),
            disagreeing=json.loads(k["rec_disagreeing"]),
        ),
    )  # fmt: skip


def write_run(store: GraphStore, run: ClusteringRun, day_from: int, day_to: int, n_devices: int) -> None:
    """Write the run atomically (one statement), then prune runs beyond the newest KEEP_RUNS."""
    clusters = [
        {
            "uid": f"{run.run_id}:{c.cluster_id}", "cluster_id": c.cluster_id, "label": c.label, "size": c.size,
            "confidence": float(c.confidence), "separation": float(c.separation),
            "reasons": json.dumps([r.__dict__ for r in c.reasons]),
            "rec_sgt": c.recommendation.sgt, "rec_sgt_name": c.recommendation.sgt_name,
            "rec_is_new": c.recommendation.is_new, "rec_confidence": float(c.recommendation.confidence),
            "rec_disagreeing": json.dumps(c.recommendation.disagreeing),
        }
        for c in run.clusters
    ]  # fmt: skip
    # lists, not maps: the FalkorDB adapter renders rows of lists at C speed (100k members = 3 MB)
    members = [[[m.device_id, float(m.probability)] for m in c.members] for c in run.clusters]
    store.write(
        "merge/clustering_run",
        {
            "run_id": run.run_id, "created_ms": run.created_ms, "params_json": json.dumps(run.params.to_dict()),
            "input_digest": run.input_digest, "n_devices": n_devices, "n_clusters": len(run.clusters),
            "n_noise": len(run.noise), "next_cluster_id": run.next_cluster_id, "day_from": day_from,
            "day_to": day_to, "clusters": clusters, "members": members,
        },
    )  # fmt: skip
    store.write("merge/clustering_prune", {"keep": KEEP_RUNS})


Compute = Callable[[GraphSnapshot, ClusteringParams, ClusteringRun | None, Progress], ClusteringRun]


def local_compute(
    snapshot: GraphSnapshot, params: ClusteringParams, previous: ClusteringRun | None, progress: Progress
) -> ClusteringRun:
    from clarion.analytics.pipeline import run_clustering

    return run_clustering(snapshot, params, previous=previous, progress=progress)


def cluster_graph(
    store: GraphStore,
    params: ClusteringParams,
    *,
    day_from: int = ALL_DAYS[0],
    day_to: int = ALL_DAYS[1],
    progress: Progress = _noop,
    compute: Compute = local_compute,
) -> ClusteringRun:
    """Read, cluster, write back. Progress: 0–0.2 reading, 0.2–0.9 clustering, 0.9–1 writing.

    The previous run is read while the snapshot is; the run's ``timings`` gain read/compute/write seconds.
    """
    t0 = time.perf_counter()
    if compute is local_compute:  # load the pipeline's libraries while the store answers the reads
        warm = threading.Thread(target=importlib.import_module, args=("clarion.analytics.pipeline",), daemon=True)
        warm.start()
    with ThreadPoolExecutor(1, thread_name_prefix="previous-run") as pool:
        prev = pool.submit(latest_run, store)
        snapshot = read_snapshot(store, day_from, day_to, lambda f, m: progress(0.2 * f, m))
        previous = prev.result()
    t1 = time.perf_counter()
    run = compute(snapshot, params, previous, lambda f, m: progress(0.2 + 0.7 * f, m))
    t2 = time.perf_counter()
    progress(0.9, f"writing {len(run.clusters)} clusters")
    write_run(store, run, day_from, day_to, snapshot.n_devices)
    t3 = time.perf_counter()
    stages = {"read": t1 - t0, "compute": t2 - t1, "write": t3 - t2, "end_to_end": t3 - t0}
    run.timings.update({k: round(v, 3) for k, v in stages.items()})
    progress(1.0, f"done in {t3 - t0:.1f} s: {len(run.clusters)} clusters, {len(run.noise)} noise")
    return run


def start_clustering_job(
    runner: JobRunner,
    store: GraphStore,
    params: ClusteringParams,
    day_from: int = ALL_DAYS[0],
    day_to: int = ALL_DAYS[1],
) -> Job:
    """Queue a clustering job: reading and writing in the jobs thread, the pipeline in the warm worker."""

    def work(job: Job, r: JobRunner) -> dict[str, Any]:
        def compute(
            snapshot: GraphSnapshot, p: ClusteringParams, previous: ClusteringRun | None, _: Progress
        ) -> ClusteringRun:
            result: ClusteringRun = r.run_in_worker(job, local_compute, snapshot, p, previous, span=(0.2, 0.9))
            return result

        run = cluster_graph(store, params, day_from=day_from, day_to=day_to, progress=job.report, compute=compute)
        return {"run_id": run.run_id, "clusters": len(run.clusters), "noise": len(run.noise)}

    return runner.submit("clustering", work)
