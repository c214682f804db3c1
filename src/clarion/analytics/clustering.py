"""HDBSCAN over the behavioural features, with canonical labels so equal input gives equal output.

The library is ``hdbscan`` (Borůvka KD-tree; chosen by measurement in
docs/decisions/0003-hdbscan-implementation.md). Above ``max_fit_points`` devices it is fitted on a
deterministic sample and every other device takes the outcome of its nearest sampled neighbour
(its cluster and membership probability, or noise). Noise is never forced into a cluster.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Digests = npt.NDArray[np.uint64]

#: Above this many devices HDBSCAN is fitted on a sample of this size (time grows faster than n).
DEFAULT_MAX_FIT_POINTS = 20_000
#: A refinement split is kept when its parts hold at least this share of the cluster (ADR 0003, docs/clustering.md).
REFINE_MIN_COVER = 0.5
#: A refinement fit samples this many of the cluster's devices (ADR 0014: 5,000 cost twice the CPU and found the
#: same roles; 2,000 lost the desktop/laptop split on one 10k campus).
REFINE_FIT_POINTS = 3000
#: Levels of refinement (a part of a split cluster may itself be split once more).
REFINE_DEPTH = 2


@dataclass(frozen=True)
class Partition:
    """Per feature row: cluster label (-1 noise; 0.. by size, largest first) and membership probability."""

    labels: Ints
    probabilities: Floats
    #: Rows HDBSCAN was fitted on (all rows unless sampled).
    fitted_rows: Ints

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) and self.labels.max() >= 0 else 0


def hdbscan_labels(x: Floats, min_cluster_size: int, min_samples: int, leaf: bool = False) -> tuple[Ints, Floats]:
    """labels and membership probabilities (ADR 0003: the ``hdbscan`` library, Borůvka KD-tree).

    ``leaf``: select the leaves of the condensed tree (fine, small groups) instead of excess of mass.
    """
    import hdbscan  # type: ignore[import-untyped]

    n = len(x)
    if n < max(min_cluster_size, 2):
        return np.full(n, -1, dtype=np.int64), np.zeros(n)
    model = hdbscan.HDBSCAN(
        min_cluster_size=int(min_cluster_size),
        min_samples=int(min(min_samples, n - 1)),
        algorithm="boruvka_kdtree",
        cluster_selection_method="leaf" if leaf else "eom",
        core_dist_n_jobs=1,  # one thread: deterministic, and the second core stays with the API
    ).fit(np.ascontiguousarray(x, dtype=np.float64))
    return np.asarray(model.labels_, dtype=np.int64), np.asarray(model.probabilities_, dtype=np.float64)


def key_rank(keys: list[str]) -> Ints:
    """Each key's position in sorted order (numpy orders str by code point, as Python does)."""
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.argsort(np.asarray(keys), kind="stable")] = np.arange(len(keys))
    return rank


def canonical_labels(labels: Ints, keys: list[str], rank: Ints | None = None) -> Ints:
    """Renumber clusters by size (largest first), ties by their smallest member key: order-free ids.

    ``rank``: ``key_rank(keys)``, or any numbers in the same order as the keys, when the caller has them.
    """
    out = np.full(len(labels), -1, dtype=np.int64)
    found = labels >= 0
    if not found.any():
        return out
    if rank is None:
        rank = key_rank(keys)
    clusters, inv = np.unique(labels[found], return_inverse=True)
    inv = inv.ravel()
    size = np.bincount(inv, minlength=len(clusters))
    first = np.full(len(clusters), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inv, rank[found])
    new = np.empty(len(clusters), dtype=np.int64)
    new[np.lexsort((first, -size))] = np.arange(len(clusters))
    out[found] = new[inv]
    return out


def key_digests(keys: list[str], seed: int) -> Digests:
    """A 64-bit hash of ``seed:key`` per key (blake2b): what sampling orders devices by.

    Computed once per run and handed down (refinement samples the same devices again at each level).
    """
    prefix = f"{seed}:".encode()
    blob = b"".join([hashlib.blake2b(prefix + k.encode(), digest_size=8).digest() for k in keys])
    return np.frombuffer(blob, dtype=">u8").astype(np.uint64)


def sample_rows(keys: list[str], m: int, seed: int, digests: Digests | None = None) -> Ints:
    """``m`` rows chosen by a hash of the device key: the same devices are chosen whatever their order.

    ``digests``: ``key_digests(keys, seed)`` when the caller has them already.
    """
    if digests is None:
        digests = key_digests(keys, seed)
    return np.sort(np.argsort(digests, kind="stable")[:m]).astype(np.int64)


def cluster_features(
    x: Floats,
    keys: list[str],
    min_cluster_size: int,
    min_samples: int,
    seed: int = 0,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    borders: bool = True,
    workers: int = 1,
    digests: Digests | None = None,
    min_clusters: int = 0,
    rank: Ints | None = None,
) -> Partition:
    """HDBSCAN on ``x`` (one row per device, ``keys`` its uid); sampled above ``max_fit_points`` rows.

    ``borders``: let noise rows within a member's core distance join its cluster (``_join_borders``).
    ``workers``: threads for the nearest-neighbour queries (scipy releases the GIL; same answers).
    ``digests``: ``key_digests(keys, seed)``, when the caller has them (the sample is the same).
    ``rank``: ``key_rank(keys)`` when the caller has it (canonical numbering without sorting the keys again).
    ``min_clusters``: when the fit finds fewer clusters, stop there and call every row noise (refinement
    only wants splits: the border rule and the assignment of the unsampled rows are then skipped).
    """
    n = len(x)
    if n <= max_fit_points:
        labels, probs = hdbscan_labels(x, min_cluster_size, min_samples)
        if labels.max(initial=-1) + 1 < min_clusters:
            return Partition(np.full(n, -1, dtype=np.int64), np.zeros(n), np.arange(n, dtype=np.int64))
        if borders:
            labels = _join_borders(x, labels, np.arange(n), min_samples, workers)
        return Partition(canonical_labels(labels, keys, rank), probs, np.arange(n, dtype=np.int64))
    fit = sample_rows(keys, max_fit_points, seed, digests)
    scale = len(fit) / n
    s_labels, s_probs = hdbscan_labels(x[fit], max(5, round(min_cluster_size * scale)), min_samples)
    if s_labels.max(initial=-1) + 1 < min_clusters:
        return Partition(np.full(n, -1, dtype=np.int64), np.zeros(n), fit)
    labels = np.full(n, -1, dtype=np.int64)
    probs = np.zeros(n)
    labels[fit] = s_labels
    probs[fit] = s_probs
    rest = np.setdiff1d(np.arange(n), fit)
    if len(rest) and s_labels.max(initial=-1) >= 0:  # all-noise sample: the rest is noise, no search needed
        # scipy's KD-tree answered 1-NN queries ~5x faster than scikit-learn's here (ADR 0003).
        _, near = cKDTree(x[fit]).query(x[rest], k=1, workers=workers)
        labels[rest] = s_labels[near]
        probs[rest] = s_probs[near]
    if borders:
        labels = _join_borders(x, labels, fit, min_samples, workers)
    return Partition(canonical_labels(labels, keys, rank), probs, fit)


def _join_borders(x: Floats, labels: Ints, fit: Ints, min_samples: int, workers: int = 1) -> Ints:
    """DBSCAN's border rule: a noise row within the core distance of a clustered fitted row joins its cluster.

    HDBSCAN* keeps only core points in clusters, so a device at the rim of a dense group, as close to a
    member as that member's own ``min_samples``-th neighbour, is called noise. DBSCAN calls such a point
    a border point of the cluster; Clarion does too. Anything farther stays noise (probability 0).
    """
    noise = np.flatnonzero(labels < 0)
    core_rows = fit[labels[fit] >= 0]
    if len(noise) == 0 or len(core_rows) == 0:
        return labels
    k = min(min_samples + 1, len(fit))
    dist, near = cKDTree(x[core_rows]).query(x[noise], k=1, workers=workers)
    # Core distances only of the members some noise row is nearest to (a few thousand, not every member).
    wanted, slot = np.unique(near, return_inverse=True)
    # a row is its own first neighbour
    core_dist = cKDTree(x[fit]).query(x[core_rows[wanted]], k=k, workers=workers)[0][:, -1]
    out = labels.copy()
    joins = dist <= core_dist[slot.ravel()]
    out[noise[joins]] = labels[core_rows[near[joins]]]
    return out


def refine_clusters(
    weighted: Floats,
    part: Partition,
    keys: list[str],
    min_cluster_size: int,
    min_samples: int,
    dims: int,
    seed: int = 0,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    workers: int = 1,
    digests: Digests | None = None,
    rank: Ints | None = None,
) -> Partition:
    """Re-cluster each cluster in its own projection; keep the split when HDBSCAN finds two or more parts.

    The global projection spends its few dimensions on what separates the big groups, and HDBSCAN's
    excess-of-mass selection keeps two touching groups (desktops and laptops) as one when their union
    is denser than either alone; re-projected on its own main directions, such a cluster shows its
    parts. Parts are as small as the global ``min_cluster_size`` allows, in devices, not a share of the
    cluster: a few hundred jump hosts hide among 25,000 desktops (ADR 0014). A split is kept only when
    the parts hold REFINE_MIN_COVER of the cluster (a group without inner density structure is not
    shredded); members the inner run leaves unassigned stay members and join the part of their nearest
    assigned neighbour: they belonged to the cluster, so a split never turns members into noise. Noise
    of the global run stays noise. Up to REFINE_DEPTH levels: desktops, laptops and phones merged at
    the top split in two steps; only the parts of a split are refined again.

    ``workers`` > 1 runs the fits in that many forked processes (``hdbscan`` holds the GIL), and a
    part's fit starts as soon as its cluster's split is known, not after the whole level. Each fit is
    a pure function of its rows, and the results are merged by walking the tree in cluster order, so
    the outcome is the same whatever the number of workers or the order the fits finish in.
    """
    if digests is None:
        digests = key_digests(keys, seed)
    if rank is None:
        rank = key_rank(keys)
    fit_points = min(REFINE_FIT_POINTS, max_fit_points)

    def job(idx: Ints) -> _SplitJob:
        x = project(weighted[idx] - weighted[idx].mean(axis=0), dims)
        return _SplitJob(x, [keys[i] for i in idx], digests[idx], rank[idx], min_cluster_size, min_samples, seed,
                         fit_points)  # fmt: skip

    roots = [_Node(np.flatnonzero(part.labels == c), 1) for c in range(part.n_clusters)]
    pool = _fork_pool(workers)
    pending: dict[Future[_SplitResult], _Node] = {}

    def start(node: _Node) -> None:
        if len(node.idx) < 3 * min_cluster_size:
            return
        if pool is None:
            finish(node, _split(job(node.idx)))
        else:
            pending[pool.submit(_split, job(node.idx))] = node

    def finish(node: _Node, result: _SplitResult) -> None:
        if result is None:
            return
        parts, inner_probs, inside = result
        node.inner = (inner_probs, inside)
        node.children = [_Node(node.idx[parts == s], node.depth + 1) for s in range(int(parts.max()) + 1)]
        if node.depth < REFINE_DEPTH:
            for child in node.children:
                start(child)

    try:
        for root in sorted(roots, key=lambda r: -len(r.idx)):  # largest first: the two workers finish together
            start(root)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finish(pending.pop(future), future.result())
    finally:
        if pool is not None:
            pool.shutdown()

    labels = part.labels.copy()
    probs = part.probabilities.copy()
    next_label = part.n_clusters

    def assign(node: _Node, label: int) -> None:
        nonlocal next_label
        if node.children is None or node.inner is None:
            labels[node.idx] = label
            return
        inner_probs, inside = node.inner
        probs[node.idx] = np.where(inside, inner_probs, probs[node.idx])
        for s, child in enumerate(node.children):
            if s == 0:
                assign(child, label)
            else:
                assign(child, next_label)
                next_label += 1

    for c, root in enumerate(roots):
        assign(root, c)
    return Partition(canonical_labels(labels, keys, rank), probs, part.fitted_rows)


@dataclass
class _Node:
    """A cluster or part in the refinement tree: its rows, and its parts once its fit split it."""

    idx: Ints
    depth: int
    children: list[_Node] | None = None
    #: The split's membership probabilities and which rows its fit placed (the rest joined a part by proximity).
    inner: tuple[Floats, npt.NDArray[np.bool_]] | None = None


def _fork_pool(workers: int) -> Executor | None:
    """A process pool forked from this process (inherits the imported libraries: no start-up import), or None.

    Only where fork is the platform's safe default (Linux); elsewhere refinement runs in this process.
    """
    if workers <= 1 or not sys.platform.startswith("linux"):
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


@dataclass(frozen=True)
class _SplitJob:
    x: Floats
    keys: list[str]
    digests: Digests
    rank: Ints
    min_cluster_size: int
    min_samples: int
    seed: int
    max_fit_points: int


_SplitResult = tuple[Ints, Floats, npt.NDArray[np.bool_]] | None


def _split(job: _SplitJob) -> _SplitResult:
    """Parts of one cluster (every member placed), inner probabilities and who the inner run placed; None: no split."""
    x = job.x
    inner = cluster_features(
        x, job.keys, job.min_cluster_size, job.min_samples, job.seed, job.max_fit_points, digests=job.digests,
        min_clusters=2, rank=job.rank,
    )  # fmt: skip
    inside = inner.labels >= 0
    if inner.n_clusters < 2 or float(np.mean(inside)) < REFINE_MIN_COVER:
        return None  # no split, or parts too thin to be more than noise in a coherent cluster
    parts = inner.labels.copy()
    if not inside.all():
        # The nearest assigned row among the fitted ones (a few thousand): as good a guide, far cheaper.
        anchors = inner.fitted_rows[inner.labels[inner.fitted_rows] >= 0]
        if len(anchors) == 0:
            anchors = np.flatnonzero(inside)
        _, near = cKDTree(x[anchors]).query(x[~inside], k=1)
        parts[~inside] = inner.labels[anchors[near]]
    return parts, inner.probabilities, inside


def project(x: Floats, k: int) -> Floats:
    """Rows of ``x`` on its top ``k`` right singular vectors (exact, via the Gram matrix), signs fixed."""
    if x.shape[1] <= k:
        return np.ascontiguousarray(x)
    values, vectors = np.linalg.eigh(x.T @ x)
    top = vectors[:, np.argsort(-values, kind="stable")[:k]]
    signs = np.sign(top[np.argmax(np.abs(top), axis=0), np.arange(top.shape[1])])
    signs[signs == 0] = 1.0
    return np.ascontiguousarray(x @ (top * signs))


def warm_up() -> float:
    """Import the clustering library and run it once on tiny data; returns seconds taken.

    A long-lived worker may call this at start so the first real run pays no import cost.
    """
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0.0, 0.1, (40, 3)), rng.normal(3.0, 0.1, (40, 3))])
    hdbscan_labels(x, 10, 5)
    return time.perf_counter() - start
