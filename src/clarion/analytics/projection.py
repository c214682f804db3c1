"""Weighting and reduction of feature blocks: idf, row norms, standardising, neighbour means, a deterministic SVD.

Split from ``features``; pure functions over numpy and scipy.sparse matrices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
from sklearn.decomposition import TruncatedSVD  # type: ignore[import-untyped]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

GRAM_MAX_COLUMNS = 1000  # up to this many columns the SVD goes through the exact Gram route


def tfidf(counts: sp.csr_matrix, rows: Ints) -> sp.csr_matrix:
    """Binary tokens × idf (document frequency over the clustered rows), rows L2-normalised."""
    m = sp.csr_matrix(counts > 0, dtype=np.float64)
    df = np.asarray(m[rows].sum(axis=0)).ravel()
    idf = np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0
    return l2_rows(sp.csr_matrix(m @ sp.diags(idf)))


def l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def svd(m: sp.spmatrix | Floats, fit_rows: Ints, k: int, seed: int) -> Floats:
    """Project every row on the top ``k`` right singular vectors of ``m[fit_rows]`` (uncentred, like LSA).

    With a few hundred columns the exact route (eigenvectors of the columns' Gram matrix) is both
    faster than a randomized SVD and deterministic; each vector's sign is fixed (largest entry
    positive). Wide inputs fall back to scikit-learn's randomized TruncatedSVD with a fixed seed.
    """
    cols = m.shape[1]
    if cols <= k:
        dense = m.toarray() if sp.issparse(m) else m  # type: ignore[union-attr]
        return np.asarray(dense, dtype=np.float64)
    if cols <= GRAM_MAX_COLUMNS:
        fit = m[fit_rows]
        gram = fit.T @ fit
        gram = np.asarray(gram.toarray() if sp.issparse(gram) else gram, dtype=np.float64)  # type: ignore[union-attr]
        values, vectors = np.linalg.eigh(gram)
        top = vectors[:, np.argsort(-values, kind="stable")[:k]]
        signs = np.sign(top[np.argmax(np.abs(top), axis=0), np.arange(top.shape[1])])
        signs[signs == 0] = 1.0
        return np.asarray(m @ (top * signs), dtype=np.float64)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=seed)
    svd.fit(m[fit_rows])
    return np.asarray(svd.transform(m), dtype=np.float64)


def standardise(x: Floats, rows: Ints) -> Floats:
    mean = x[rows].mean(axis=0)
    std = x[rows].std(axis=0)
    std[std < 1e-9] = 1.0
    return np.asarray(np.clip((x - mean) / std, -4.0, 4.0), dtype=np.float64)


def row_mean(adj: sp.csr_matrix, values: Floats) -> Floats:
    """Per row, the mean of ``values`` over its neighbours (zeros for a row without neighbours)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    deg[deg == 0] = 1.0
    return np.asarray((adj @ values) / deg[:, None], dtype=np.float64)
