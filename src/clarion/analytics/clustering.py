"""HDBSCAN over the behavioural features, with canonical labels so equal input gives equal output.

The library is ``hdbscan`` (Borůvka KD-tree; chosen by measurement in
docs/decisions/0003-hdbscan-implementation.md). Above ``max_fit_points`` devices it is fitted on a
deterministic sample and every other device takes the outcome of its nearest sampled neighbour
(its cluster and membership probability, or noise). Noise is never forced into a cluster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Above this many devices HDBSCAN is fitted on a sample of this size (time grows faster than n).
DEFAULT_MAX_FIT_POINTS = 20_000
REFINE_MAX_NOISE = 0.2


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


def _hdbscan(x: Floats, min_cluster_size: int, min_samples: int) -> tuple[Ints, Floats]:
    """labels and membership probabilities (ADR 0003: the ``hdbscan`` library, Borůvka KD-tree)."""
    import hdbscan  # type: ignore[import-untyped]

    n = len(x)
    if n < max(min_cluster_size, 2):
        return np.full(n, -1, dtype=np.int64), np.zeros(n)
    model = hdbscan.HDBSCAN(
        min_cluster_size=int(min_cluster_size),
        min_samples=int(min(min_samples, n - 1)),
        algorithm="boruvka_kdtree",
        core_dist_n_jobs=1,  # one thread: deterministic, and the second core stays with the API
    ).fit(np.ascontiguousarray(x, dtype=np.float64))
    return np.asarray(model.labels_, dtype=np.int64), np.asarray(model.probabilities_, dtype=np.float64)


def canonical_labels(labels: Ints, keys: list[str]) -> Ints:
    """Renumber clusters by size (largest first), ties by their smallest member key: order-free ids."""
    out = np.full(len(labels), -1, dtype=np.int64)
    found = [int(v) for v in np.unique(labels) if v >= 0]
    order = []
    for v in found:
        idx = np.flatnonzero(labels == v)
        order.append((-len(idx), min(keys[i] for i in idx), v))
    for new, (_, _, old) in enumerate(sorted(order)):
        out[labels == old] = new
    return out


def sample_rows(keys: list[str], m: int, seed: int) -> Ints:
    """``m`` rows chosen by a hash of the device key: the same devices are chosen whatever their order."""
    digests = np.array(
        [int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "big") for k in keys],
        dtype=np.uint64,
    )
    return np.sort(np.argsort(digests, kind="stable")[:m]).astype(np.int64)


def cluster_features(
    x: Floats,
    keys: list[str],
    min_cluster_size: int,
    min_samples: int,
    seed: int = 0,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
) -> Partition:
    """HDBSCAN on ``x`` (one row per device, ``keys`` its uid); sampled above ``max_fit_points`` rows."""
    n = len(x)
    if n <= max_fit_points:
        labels, probs = _hdbscan(x, min_cluster_size, min_samples)
        return Partition(canonical_labels(labels, keys), probs, np.arange(n, dtype=np.int64))
    fit = sample_rows(keys, max_fit_points, seed)
    scale = len(fit) / n
    s_labels, s_probs = _hdbscan(x[fit], max(5, round(min_cluster_size * scale)), min_samples)
    labels = np.full(n, -1, dtype=np.int64)
    probs = np.zeros(n)
    labels[fit] = s_labels
    probs[fit] = s_probs
    rest = np.setdiff1d(np.arange(n), fit)
    if len(rest):
        # scipy's KD-tree answered 1-NN queries ~5x faster than scikit-learn's here (ADR 0003).
        _, near = cKDTree(x[fit]).query(x[rest], k=1)
        labels[rest] = s_labels[near]
        probs[rest] = s_probs[near]
    return Partition(canonical_labels(labels, keys), probs, fit)


def refine_clusters(
    weighted: Floats,
    part: Partition,
    keys: list[str],
    min_cluster_size: int,
    min_samples: int,
    dims: int,
    seed: int = 0,
    max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
) -> Partition:
    """Re-cluster each cluster in its own projection; keep the split when HDBSCAN finds two or more parts.

    The global projection spends its few dimensions on what separates the big groups; a small
    role (ten database servers among a hundred servers) only stands out once its cluster's rows are
    re-projected on their own main directions. One level deep. A split is kept only when the inner
    run leaves at most REFINE_MAX_NOISE of the cluster as noise (those devices become noise);
    otherwise the cluster stays whole: a group without inner density structure is not shredded.
    """
    labels = part.labels.copy()
    probs = part.probabilities.copy()
    next_label = part.n_clusters
    for c in range(part.n_clusters):
        idx = np.flatnonzero(part.labels == c)
        if len(idx) < 3 * min_cluster_size:
            continue
        sub = weighted[idx] - weighted[idx].mean(axis=0)
        x = _project(sub, dims)
        inner = cluster_features(
            x, [keys[i] for i in idx], min_cluster_size, min_samples, seed, max(1000, max_fit_points // 2)
        )
        if inner.n_clusters < 2 or float(np.mean(inner.labels < 0)) > REFINE_MAX_NOISE:
            continue  # no split, or one that would turn much of a coherent cluster into noise
        for s in range(inner.n_clusters):
            labels[idx[inner.labels == s]] = c if s == 0 else next_label
            next_label += 0 if s == 0 else 1
        labels[idx[inner.labels < 0]] = -1
        probs[idx] = inner.probabilities
    return Partition(canonical_labels(labels, keys), probs, part.fitted_rows)


def _project(x: Floats, k: int) -> Floats:
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
    _hdbscan(x, 10, 5)
    return time.perf_counter() - start
