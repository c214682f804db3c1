"""One clustering run end to end: snapshot -> features -> HDBSCAN -> labels, reasons, SGTs, stable ids.

Pure and deterministic: the same snapshot and parameters (and the same previous run) give the
same clusters, ids, labels and recommendations. The job layer reads the snapshot from the store,
calls ``run_clustering`` in a worker and writes the result back.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
import uuid
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from clarion.analytics.clustering import (
    DEFAULT_MAX_FIT_POINTS,
    Partition,
    cluster_features,
    key_digests,
    key_rank,
    refine_clusters,
)
from clarion.analytics.features import Features, build_features
from clarion.analytics.labels import describe_clusters
from clarion.analytics.model import Cluster, ClusteringParams, ClusteringRun, Member
from clarion.analytics.noise_pass import recluster_noise
from clarion.analytics.recommend import recommend_sgt
from clarion.analytics.snapshot import GraphSnapshot
from clarion.analytics.stability import assign_ids

Progress = Callable[[float, str], None]

#: Processes (and query threads) the HDBSCAN stage may use: the 2-core target machine, at most.
DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))


def snapshot_digest(snapshot: GraphSnapshot, params: ClusteringParams) -> str:
    """sha256 over everything a run reads: equal digests promise equal results."""
    h = hashlib.sha256()
    h.update(repr(sorted(params.to_dict().items())).encode())
    h.update("\x1f".join(snapshot.device_ids).encode())
    h.update(np.ascontiguousarray(snapshot.local).tobytes())
    h.update(np.ascontiguousarray(snapshot.edges).tobytes())
    h.update(repr((snapshot.ad_groups, snapshot.profile, snapshot.sgt, sorted(snapshot.sgt_names.items()))).encode())
    return h.hexdigest()


def _cpu_seconds() -> float:
    """CPU seconds of this process plus its reaped children (the refinement workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _separation(x: np.ndarray, labels: np.ndarray, k: int) -> list[float]:
    """Per cluster: d / (d + 2r), d the distance to the nearest other centroid, r the median member radius."""
    if k == 0:
        return []
    cents = np.stack([x[labels == c].mean(axis=0) for c in range(k)])
    radius = np.array([float(np.median(np.linalg.norm(x[labels == c] - cents[c], axis=1))) for c in range(k)])
    if k == 1:
        return [1.0]
    d = np.linalg.norm(cents[:, None, :] - cents[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    near = d.min(axis=1)
    return [round(float(near[c] / (near[c] + 2 * radius[c] + 1e-12)), 4) for c in range(k)]


def run_clustering(
    snapshot: GraphSnapshot,
    params: ClusteringParams,
    previous: ClusteringRun | None = None,
    progress: Progress | None = None,
    *,
    run_id: str | None = None,
    now_ms: int | None = None,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    workers: int = DEFAULT_WORKERS,
) -> ClusteringRun:
    """Cluster the snapshot's local devices by behaviour and recommend an SGT per cluster.

    ``workers``: processes for the refinement fits and threads for nearest-neighbour queries; the result
    does not depend on it.
    """
    report = progress or (lambda _f, _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    report(0.0, "validating the snapshot")
    snapshot.validate()
    digest = snapshot_digest(snapshot, params)

    report(0.05, "building behavioural features")
    feats = build_features(snapshot, params)
    timings["features"] = round(time.perf_counter() - t0, 3)

    t1, cpu1 = time.perf_counter(), _cpu_seconds()
    ids = snapshot.device_ids
    keys = [ids[i] for i in feats.rows.tolist()]
    mcs = params.effective_min_cluster_size(len(keys))
    report(0.4, f"HDBSCAN over {len(keys)} devices (min_cluster_size {mcs})")
    digests, rank = key_digests(keys, params.seed), key_rank(keys)
    part = cluster_features(
        feats.matrix, keys, mcs, params.min_samples, params.seed, max_fit_points, workers=workers, digests=digests,
        rank=rank,
    )  # fmt: skip
    timings["hdbscan_global"] = round(time.perf_counter() - t1, 3)
    if params.refine:
        report(0.7, f"refining {part.n_clusters} clusters")
        with threadpool_limits(limits=1, user_api="blas"):
            part = recluster_noise(
                feats.weighted, feats.offered, feats.service_ports, part, keys, mcs, params.min_samples,
                params.svd_components, rank,
            )  # fmt: skip
            part = refine_clusters(
                feats.weighted, part, keys, mcs, params.min_samples, params.svd_components, params.seed, max_fit_points,
                workers, digests, rank,
            )  # fmt: skip
    timings["hdbscan"] = round(time.perf_counter() - t1, 3)
    # CPU of this process and of the refinement workers (reaped by now): steadier than wall time on a busy host.
    timings["hdbscan_cpu"] = round(_cpu_seconds() - cpu1, 3)

    t2 = time.perf_counter()
    report(0.85, f"describing {part.n_clusters} clusters")
    clusters, noise, next_id = _assemble(snapshot, params, feats, part, keys, previous)
    timings["describe"] = round(time.perf_counter() - t2, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    report(1.0, f"{len(clusters)} clusters, {len(noise)} noise devices")
    return ClusteringRun(
        run_id=run_id or uuid.uuid4().hex,
        params=params,
        created_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        clusters=clusters,
        noise=noise,
        input_digest=digest,
        timings=timings,
        next_cluster_id=next_id,
    )


def _assemble(
    snapshot: GraphSnapshot,
    params: ClusteringParams,
    feats: Features,
    part: Partition,
    keys: list[str],
    previous: ClusteringRun | None,
) -> tuple[list[Cluster], list[str], int]:
    k = part.n_clusters
    descriptions = describe_clusters(feats, part.labels, snapshot.profile if params.identity_weight > 0 else None)
    separation = _separation(feats.matrix, part.labels, k)
    # Rows in uid order once (numpy orders str by code point, as Python does): members and noise come out
    # sorted without a Python sort of 100k objects per run.
    by_uid = np.argsort(np.asarray(keys), kind="stable")
    ordered = part.labels[by_uid]
    member_rows = [by_uid[ordered == c] for c in range(k)]
    member_sets = [[keys[i] for i in rows] for rows in member_rows]
    prev_sets = {c.cluster_id: [m.device_id for m in c.members] for c in previous.clusters} if previous else None
    first_fresh = previous.next_cluster_id if previous else 0
    ids, next_id = assign_ids(prev_sets, member_sets, first_fresh, params.match_min_jaccard)

    sgts = snapshot.sgt
    # plain Python values once, not a numpy scalar per member (100k members: seconds otherwise)
    probs = [round(p, 4) for p in np.asarray(part.probabilities, dtype=np.float64).tolist()]
    snap_rows_all = feats.rows.tolist()
    taken: set[str] = set()
    clusters = []
    # Recommend in canonical order (largest first) so name suffixes do not depend on previous ids.
    for c in range(k):
        rows = member_rows[c]
        row_list = rows.tolist()
        member_sgt = [sgts[snap_rows_all[i]] for i in row_list] if sgts is not None else [None] * len(rows)
        members = [Member(keys[i], probs[i], s) for i, s in zip(row_list, member_sgt, strict=True)]
        rec = recommend_sgt(
            [m.device_id for m in members],
            [m.sgt for m in members],
            descriptions[c].word,
            snapshot.sgt_names,
            taken,
            params.sgt_majority,
        )
        clusters.append(
            Cluster(
                cluster_id=ids[c],
                label=descriptions[c].label,
                size=len(rows),
                confidence=round(float(part.probabilities[np.sort(rows)].mean()), 4),
                separation=separation[c],
                reasons=descriptions[c].reasons,
                members=members,
                recommendation=rec,
            )
        )
    clusters.sort(key=lambda cl: cl.cluster_id)
    noise = [keys[i] for i in by_uid[ordered < 0].tolist()]
    return clusters, noise, next_id
