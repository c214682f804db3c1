"""Exact vectorised group-by over several uint64 key columns.

Sorting one 64-bit hash is several times faster than a multi-column lexsort, and sorting values
(SIMD ``np.sort``) is about five times faster than ``argsort``: so the row index is packed into
the low bits of the hash and the packed words are sorted. Equal hashes then come out in row
order (a stable group). Every group is checked against its first row, and on any hash collision
the chunk falls back to an exact lexsort, so the result is always exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
IntArr = npt.NDArray[np.intp]

_SEED = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
#: Hash bits kept next to the row index: below this many the collision fallback would run too often.
_MIN_HASH_BITS = 32
_SHIFT1 = np.uint64(29)
_SHIFT2 = np.uint64(32)


def hash_columns(keys: Sequence[npt.NDArray[np.unsignedinteger]], *, seed: np.uint64 = _SEED) -> U64:
    """A well-mixed 64-bit hash of each row of the key columns.

    Each column costs one xor, one multiply and one fold in place; a finaliser mixes the
    result. With ``seed=0`` a row of zeros hashes to 0, so a hash of optional columns can be
    xored onto another without changing rows where they are absent.
    """
    n = len(keys[0])
    h = np.full(n, seed, dtype=np.uint64)
    tmp = np.empty(n, dtype=np.uint64)
    for k in keys:
        h ^= k if k.dtype == np.uint64 else k.astype(np.uint64)
        h *= _MUL1
        np.right_shift(h, _SHIFT1, out=tmp)
        h ^= tmp
    h *= _MUL2
    np.right_shift(h, _SHIFT2, out=tmp)
    h ^= tmp
    return h


def sort_hash(h: U64) -> tuple[IntArr, npt.NDArray[np.bool_]] | None:
    """(order, breaks): ``order`` sorts ``h`` (rows of equal hash keep their input order) and
    ``breaks`` is True where a new hash value starts in sorted order. None when ``h`` is too long."""
    n = len(h)
    bits = max(int(n - 1).bit_length(), 1)
    if 64 - bits < _MIN_HASH_BITS:
        return None
    low = np.uint64((1 << bits) - 1)
    packed = h & ~low
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.intp)
    packed >>= np.uint64(bits)
    brk = np.empty(n, dtype=bool)
    brk[0] = True
    np.not_equal(packed[1:], packed[:-1], out=brk[1:])
    return order, brk


def group(
    keys: Sequence[npt.NDArray[np.unsignedinteger]],
    *,
    stable: bool = True,
    hashes: U64 | None = None,
    sorted_hash: tuple[IntArr, npt.NDArray[np.bool_]] | None = None,
) -> tuple[IntArr, IntArr]:
    """Return (order, starts): ``order`` makes equal keys adjacent, ``starts`` opens each group.

    Rows of a group keep their input order, so its last row is the most recently added one
    (``stable`` is kept for callers; the packed sort is always stable). The first row of each
    group is ``order[starts]``. A caller that already holds the rows' hashes (``hashes``, as
    :func:`hash_columns` of any fixed function of the keys) or their :func:`sort_hash` skips
    that work; the result is checked against the keys either way.
    """
    del stable  # the packed sort keeps input order within a group at no extra cost
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    if sorted_hash is None:
        sorted_hash = sort_hash(hash_columns(keys) if hashes is None else hashes)
    if sorted_hash is None:
        return _exact_group(keys)
    order, brk = sorted_hash
    starts = np.flatnonzero(brk)
    if len(starts) < n:
        # Rows that share a hash with the row before them must equal that group's first row.
        dup = np.flatnonzero(~brk)
        first = order[starts[np.cumsum(brk)[dup] - 1]]
        rows = order[dup]
        if not all(np.array_equal(k[rows], k[first]) for k in keys):
            return _exact_group(keys)
    return order, starts


def _exact_group(keys: Sequence[npt.NDArray[np.unsignedinteger]]) -> tuple[IntArr, IntArr]:
    """The collision fallback: a stable lexsort on every key column."""
    order = np.lexsort(list(reversed(keys)))
    n = len(order)
    brk = np.zeros(n, dtype=bool)
    brk[0] = True
    for k in keys:
        ks = k[order]
        brk[1:] |= ks[1:] != ks[:-1]
    return order, np.flatnonzero(brk)


def group_sizes(keys: Sequence[npt.NDArray[np.unsignedinteger]]) -> IntArr:
    """How many rows share each row's key (an exact ``np.unique(..., return_counts)`` scattered back)."""
    n = len(keys[0])
    order, starts = group(keys)
    sizes = np.diff(starts, append=n)
    out = np.empty(n, dtype=np.intp)
    out[order] = np.repeat(sizes, sizes)
    return out


def last_of_group(order: IntArr, starts: IntArr) -> IntArr:
    """Row index of the last (most recently added) row of each group."""
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1:] = len(order) - 1
    return order[ends]
