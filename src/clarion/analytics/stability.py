"""Stable cluster ids across runs: a cluster keeps the id of the previous cluster it overlaps most.

Matching is one-to-one (Hungarian assignment maximising Jaccard overlap of member sets), so a
split or merge keeps the id on the best-overlapping side only, and new clusters get fresh ids
that were never used before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]


def jaccard_matrix(previous: Sequence[Collection[str]], current: Sequence[Collection[str]]) -> np.ndarray:
    """Jaccard overlap of each previous (rows) and current (columns) member set."""
    owner: dict[str, int] = {}
    for i, members in enumerate(previous):
        for d in members:
            owner[d] = i
    inter = np.zeros((len(previous), len(current)))
    for j, members in enumerate(current):
        for d in members:
            row = owner.get(d)
            if row is not None:
                inter[row, j] += 1
    prev_size = np.array([len(m) for m in previous], dtype=np.float64)
    cur_size = np.array([len(m) for m in current], dtype=np.float64)
    union = prev_size[:, None] + cur_size[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_clusters(
    previous: Mapping[int, Collection[str]], current: Sequence[Collection[str]], min_jaccard: float = 0.3
) -> list[int | None]:
    """For each current cluster, the previous id it continues, or None (a new cluster)."""
    prev_ids = sorted(previous)
    out: list[int | None] = [None] * len(current)
    if not prev_ids or not current:
        return out
    jac = jaccard_matrix([previous[i] for i in prev_ids], current)
    rows, cols = linear_sum_assignment(jac, maximize=True)
    for r, c in zip(rows, cols, strict=True):
        if jac[r, c] >= min_jaccard:
            out[int(c)] = prev_ids[int(r)]
    return out


def assign_ids(
    previous: Mapping[int, Collection[str]] | None,
    current: Sequence[Collection[str]],
    next_id: int,
    min_jaccard: float = 0.3,
) -> tuple[list[int], int]:
    """Ids for the current clusters (continued or fresh, in order) and the next fresh id."""
    matched = match_clusters(previous or {}, current, min_jaccard)
    ids: list[int] = []
    for m in matched:
        if m is None:
            ids.append(next_id)
            next_id += 1
        else:
            ids.append(m)
    return ids, next_id
