"""Exact vectorised group-by over several uint64 key columns.

Sorting one 64-bit hash is several times faster than a multi-column lexsort; every group is
then checked against its first row, and on any hash collision the chunk falls back to an exact
lexsort, so the result is always exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
IntArr = npt.NDArray[np.intp]

_SEED = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def hash_columns(keys: Sequence[npt.NDArray[np.unsignedinteger]]) -> U64:
    """A well-mixed 64-bit hash of each row of the key columns."""
    n = len(keys[0])
    h = np.full(n, _SEED, dtype=np.uint64)
    for k in keys:
        h ^= k.astype(np.uint64, copy=False)
        h *= _MUL1
        h ^= h >> np.uint64(29)
        h *= _MUL2
        h ^= h >> np.uint64(32)
    return h


def group(
    keys: Sequence[npt.NDArray[np.unsignedinteger]], *, stable: bool = True
) -> tuple[IntArr, IntArr, list[npt.NDArray[Any]]]:
    """Return (order, starts, sorted_keys): ``order`` makes equal keys adjacent, ``starts`` opens each group.

    With ``stable`` rows of a group keep their input order, so its last row is the most recently
    added one; order-free reductions (sums, min, max) pass False for a faster sort.
    ``sorted_keys`` are the key columns taken in ``order``.
    """
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), [k[:0] for k in keys]
    h = hash_columns(keys)
    order = np.argsort(h, kind="stable" if stable else "quicksort")
    hs = h[order]
    brk = np.empty(n, dtype=bool)
    brk[0] = True
    np.not_equal(hs[1:], hs[:-1], out=brk[1:])
    starts = np.flatnonzero(brk)
    sorted_keys = [k[order] for k in keys]
    if len(starts) < n:
        gid = np.cumsum(brk) - 1
        if not all(np.array_equal(ks, ks[starts][gid]) for ks in sorted_keys):
            return _exact_group(keys)
    return order, starts, sorted_keys


def _exact_group(keys: Sequence[npt.NDArray[np.unsignedinteger]]) -> tuple[IntArr, IntArr, list[npt.NDArray[Any]]]:
    """The collision fallback: a stable lexsort on every key column."""
    order = np.lexsort(list(reversed(keys)))
    n = len(order)
    brk = np.zeros(n, dtype=bool)
    brk[0] = True
    sorted_keys = [k[order] for k in keys]
    for ks in sorted_keys:
        brk[1:] |= ks[1:] != ks[:-1]
    return order, np.flatnonzero(brk), sorted_keys


def last_of_group(order: IntArr, starts: IntArr) -> IntArr:
    """Row index of the last (most recently added) row of each group."""
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1:] = len(order) - 1
    return order[ends]
