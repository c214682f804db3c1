"""HDBSCAN over the behavioural features, with canonical labels so equal input gives equal output.

The library is fast_hdbscan (measured in docs/decisions/0003-hdbscan-implementation.md), exact
below 31 dimensions. Above ``max_fit_points`` devices it is fitted on a deterministic sample and
the other devices join the cluster of their nearest sampled neighbour when they lie within its
core distance (inside the dense region); the others stay noise. Noise is never forced into a cluster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.neighbors import NearestNeighbors  # type: ignore[import-untyped]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Above this many devices HDBSCAN is fitted on a sample of this size (time grows faster than n).
DEFAULT_MAX_FIT_POINTS = 40_000


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


def _hdbscan(x: Floats, min_cluster_size: int, min_samples: int) -> tuple[Ints, Floats, Floats]:
    """labels, membership probabilities and core distances from fast_hdbscan (reproducible mode)."""
    # Imported late: loading its numba code costs seconds (and compiling it, the first time, a minute).
    from fast_hdbscan.hdbscan import fast_hdbscan  # type: ignore[import-untyped]

    if len(x) < max(min_cluster_size, 2):
        return np.full(len(x), -1, dtype=np.int64), np.zeros(len(x)), np.full(len(x), np.inf)
    result = fast_hdbscan(
        np.ascontiguousarray(x, dtype=np.float64),
        min_samples=int(min(min_samples, len(x) - 1)),
        min_cluster_size=int(min_cluster_size),
        reproducible=True,
        return_trees=True,
    )
    labels = np.asarray(result[0], dtype=np.int64)
    probs = np.asarray(result[1], dtype=np.float64)
    core = np.asarray(result[-1], dtype=np.float64)
    return labels, probs, core


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
        labels, probs, _ = _hdbscan(x, min_cluster_size, min_samples)
        return Partition(canonical_labels(labels, keys), probs, np.arange(n, dtype=np.int64))
    fit = sample_rows(keys, max_fit_points, seed)
    scale = len(fit) / n
    s_labels, s_probs, s_core = _hdbscan(x[fit], max(5, round(min_cluster_size * scale)), min_samples)
    labels = np.full(n, -1, dtype=np.int64)
    probs = np.zeros(n)
    labels[fit] = s_labels
    probs[fit] = s_probs
    rest = np.setdiff1d(np.arange(n), fit)
    if len(rest):
        nn = NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(x[fit])
        dist, idx = nn.kneighbors(x[rest])
        near = idx[:, 0]
        inside = (dist[:, 0] <= s_core[near]) & (s_labels[near] >= 0)
        labels[rest[inside]] = s_labels[near[inside]]
        probs[rest[inside]] = s_probs[near[inside]]
    return Partition(canonical_labels(labels, keys), probs, fit)
