"""Behavioural features per device, from the flow table alone: what a device does, not what it is called.

Blocks (each scaled so its weight is its share of the distance HDBSCAN sees):
services used and offered (TF-IDF over protocol/port, high ports bucketed), the services of its
peers (second order: the average of its neighbours' service vectors), peer structure and volumes,
activity over time, and optionally identity (AD groups, ISE profile). A recorded device type or
role is never an input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
from sklearn.decomposition import TruncatedSVD  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from clarion.analytics.model import ClusteringParams
from clarion.analytics.ports import PORT_EPHEMERAL, PORT_RARE, PORT_RARE_LOW, bucket_ports, number_services
from clarion.analytics.snapshot import GraphSnapshot
from clarion.ingest.transform import PROTOCOL_NAMES

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

HOUR_MS = 3_600_000
TIME_BINS = 6  # four-hour bins of the UTC day
SERVICE_COMPONENTS = 30  # the service profile (two hundred-odd columns) is reduced to this first
IDENTITY_COMPONENTS = 8
GRAM_MAX_COLUMNS = 1000  # up to this many columns the SVD goes through the exact Gram route

SCALAR_NAMES = (
    "log flows out",
    "log flows in",
    "log bytes out",
    "log bytes in",
    "log packets out",
    "log packets in",
    "log bytes per packet out",
    "log bytes per packet in",
    "client share of flows",
    "log distinct servers reached",
    "log distinct clients served",
    "share of remote peers",
    "log services used",
    "log services offered",
    "share of hours active",
    "share of days active",
)
TIME_NAMES = tuple(f"share of flows {4 * i:02d}-{4 * i + 4:02d} UTC" for i in range(TIME_BINS))


#: Ports that are alternatives for one job (vendor variants, with or without TLS) count as one service in
#: the distance: an Android phone's FCM channel and an iPhone's APNs channel are the same behaviour, and
#: so are a MySQL and a PostgreSQL server. Labels still name the exact ports.
SERVICE_FAMILIES: dict[tuple[int, int], str] = {
    (6, 5223): "mobile push",
    (6, 5228): "mobile push",
    (6, 5229): "mobile push",
    (6, 5230): "mobile push",
    (17, 5060): "sip",
    (6, 5060): "sip",
    (6, 5061): "sip",
    (6, 1433): "sql",
    (6, 3306): "sql",
    (6, 5432): "sql",
    (6, 1521): "sql",
    (6, 389): "ldap",
    (6, 636): "ldap",
    (6, 143): "imap",
    (6, 993): "imap",
    (6, 1883): "mqtt",
    (6, 8883): "mqtt",
    (6, 9100): "printing",
    (6, 515): "printing",
    (6, 631): "printing",
    (17, 3478): "stun/turn media",
    (17, 3479): "stun/turn media",
    (17, 3480): "stun/turn media",
    (17, 3481): "stun/turn media",
}


def service_name(protocol: int, port: int) -> str:
    """``tcp/443``; bucketed ports read ``tcp/49152+`` (ephemeral), ``tcp/1024+rare`` and ``tcp/<1024 rare``."""
    proto = PROTOCOL_NAMES.get(protocol, f"proto-{protocol}")
    if port == PORT_EPHEMERAL:
        return f"{proto}/49152+"
    if port == PORT_RARE:
        return f"{proto}/1024+rare"
    if port == PORT_RARE_LOW:
        return f"{proto}/<1024 rare"
    return f"{proto}/{port}"


@dataclass(frozen=True)
class Features:
    """Per local device: the reduced matrix HDBSCAN clusters, and readable parts for labels and reasons."""

    #: Positions (in the snapshot) of the rows below: the local devices, in snapshot order.
    rows: Ints
    #: Reduced, weighted features (n_rows × svd_components): what HDBSCAN sees.
    matrix: Floats
    #: The weighted blocks before the last reduction: refinement re-projects a cluster's rows from these.
    weighted: Floats
    #: Service vocabulary: (protocol, bucketed port) and its readable name.
    service_protocols: npt.NDArray[np.int64]
    service_ports: npt.NDArray[np.int64]
    service_names: list[str]
    #: Flows per (row, service), as client (used) and as server (offered).
    used: sp.csr_matrix
    offered: sp.csr_matrix
    #: Readable numeric features (unscaled), columns named by ``scalar_names``.
    scalars: Floats
    scalar_names: list[str]


def _family_matrix(protocols: npt.NDArray[np.int64], ports: npt.NDArray[np.int64]) -> sp.csr_matrix:
    """services × families: 1 where a service column belongs to a family (SERVICE_FAMILIES), else its own column."""
    keys = [SERVICE_FAMILIES.get((int(p), int(q)), f"{p}/{q}") for p, q in zip(protocols, ports, strict=True)]
    index = {k: j for j, k in enumerate(dict.fromkeys(keys))}
    cols = np.array([index[k] for k in keys], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(keys)), (np.arange(len(keys)), cols)), shape=(len(keys), len(index)))


def _service_profile(used: sp.csr_matrix, offered: sp.csr_matrix, rows: Ints) -> sp.csr_matrix:
    """Per device, the square root of its share of flows per (direction, service), times idf.

    Shares (not counts) so a stray scan flow weighs little next to a device's real services; the
    square root (Hellinger) keeps a minor but steady service visible; idf lifts rare, telling
    services (jetdirect, push channels, bacnet) above ones every device uses (dns, https). Full idf
    rather than its square root: measured on the synthetic campus, it is what separates desktops,
    laptops and phones, which share most of their traffic (docs/clustering.md).
    """
    both = sp.csr_matrix(sp.hstack([used, offered]), dtype=np.float64)
    total = np.asarray(both.sum(axis=1)).ravel()
    total[total == 0] = 1.0
    share = sp.csr_matrix(sp.diags(1.0 / total) @ both)
    share.data = np.sqrt(share.data)
    df = np.asarray((both[rows] > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0
    return _l2_rows(sp.csr_matrix(share @ sp.diags(idf)))


def _tfidf(counts: sp.csr_matrix, rows: Ints) -> sp.csr_matrix:
    """Binary tokens × idf (document frequency over the clustered rows), rows L2-normalised."""
    m = sp.csr_matrix(counts > 0, dtype=np.float64)
    df = np.asarray(m[rows].sum(axis=0)).ravel()
    idf = np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0
    return _l2_rows(sp.csr_matrix(m @ sp.diags(idf)))


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m)


def _svd(m: sp.spmatrix | Floats, fit_rows: Ints, k: int, seed: int) -> Floats:
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


def _standardise(x: Floats, rows: Ints) -> Floats:
    mean = x[rows].mean(axis=0)
    std = x[rows].std(axis=0)
    std[std < 1e-9] = 1.0
    return np.asarray(np.clip((x - mean) / std, -4.0, 4.0), dtype=np.float64)


def _row_mean(adj: sp.csr_matrix, values: Floats) -> Floats:
    """Per row, the mean of ``values`` over its neighbours (zeros for a row without neighbours)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    deg[deg == 0] = 1.0
    return np.asarray((adj @ values) / deg[:, None], dtype=np.float64)


def _identity_tokens(snapshot: GraphSnapshot, rows: Ints) -> sp.csr_matrix | None:
    """ISE profile (one-hot) and AD groups (idf-weighted), each block L2-normalised, or None when absent.

    The two halves weigh the same, so fifty nested groups do not drown the one profile.
    """
    parts: list[sp.csr_matrix] = []
    n = snapshot.n_devices
    if snapshot.profile is not None:
        names = sorted({p for p in snapshot.profile if p})
        index = {p: j for j, p in enumerate(names)}
        r = [i for i, p in enumerate(snapshot.profile) if p]
        c = [index[p] for p in snapshot.profile if p]
        if names:
            parts.append(_tfidf(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(names))), rows))
    if snapshot.ad_groups is not None:
        vocab = {g: j for j, g in enumerate(sorted({g for gs in snapshot.ad_groups for g in gs or ()}))}
        r = [i for i, gs in enumerate(snapshot.ad_groups) for _ in gs or ()]
        c = [vocab[g] for gs in snapshot.ad_groups for g in gs or ()]
        if vocab:
            parts.append(_tfidf(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(vocab))), rows))
    if not parts:
        return None
    return sp.csr_matrix(sp.hstack(parts) * (1.0 / np.sqrt(len(parts))))


def build_features(snapshot: GraphSnapshot, params: ClusteringParams) -> Features:
    """Turn the flow table into one weighted, reduced feature row per local device.

    BLAS runs single-threaded here: the matrices are small, and a multi-threaded OpenBLAS on a
    busy 2-core host was measured 10-40x slower on them (and a fixed thread count keeps sums stable).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _build_features(snapshot, params)


def _build_features(snapshot: GraphSnapshot, params: ClusteringParams) -> Features:
    n = snapshot.n_devices
    rows = snapshot.local_indices()
    if len(rows) == 0:
        return _no_features(params)
    e = snapshot.edges
    src = e["src"].astype(np.int64)
    dst = e["dst"].astype(np.int64)
    flows = e["flows"].astype(np.float64)
    proto = e["protocol"].astype(np.int64)
    min_devices = max(params.min_port_devices, int(np.ceil(params.min_port_share * len(rows))))
    port = bucket_ports(proto, e["port"].astype(np.int64), src, dst, min_devices)

    svc_codes, svc_idx = number_services(proto, port)
    s = len(svc_codes)
    svc_proto = svc_codes // 70_000
    svc_port = svc_codes % 70_000
    names = [service_name(int(p), int(q)) for p, q in zip(svc_proto, svc_port, strict=True)]

    used = sp.csr_matrix((flows, (src, svc_idx)), shape=(n, s))
    offered = sp.csr_matrix((flows, (dst, svc_idx)), shape=(n, s))

    # Services (first order) for every device, remote ones too (they feed the peers block), reduced.
    fam = _family_matrix(svc_proto, svc_port)
    services = _service_profile(sp.csr_matrix(used @ fam), sp.csr_matrix(offered @ fam), rows)
    z = _svd(services, rows, SERVICE_COMPONENTS, params.seed)

    # Peers (second order): the mean service vector of the servers a device reaches and of its clients.
    ones = np.ones(len(e))
    out_adj = sp.csr_matrix((ones, (src, dst)), shape=(n, n))
    out_adj.data[:] = 1.0
    in_adj = sp.csr_matrix(out_adj.T)
    peers_out = _row_mean(out_adj[rows], z)
    peers_in = _row_mean(in_adj[rows], z)

    scalars = _scalars(snapshot, src, dst, flows, port, out_adj, in_adj, used, offered)
    tod = _time_profile(e["first_seen"], e["last_seen"], src, dst, flows, n)

    half = 1.0 / np.sqrt(2.0)
    blocks: list[Floats] = [
        z[rows] * params.services_weight,
        peers_out * (params.peers_weight * half),
        peers_in * (params.peers_weight * half),
        _standardise(scalars, rows)[rows] * (params.volume_weight / np.sqrt(scalars.shape[1])),
        _standardise(tod, rows)[rows] * (params.time_weight / np.sqrt(tod.shape[1])),
    ]
    if params.identity_weight > 0:
        ident = _identity_tokens(snapshot, rows)
        if ident is not None:
            blocks.append(_svd(ident, rows, IDENTITY_COMPONENTS, params.seed)[rows] * params.identity_weight)
    full = np.hstack(blocks)
    if len(rows) == 0:
        matrix = np.zeros((0, params.svd_components))
    else:
        matrix = _svd(full, np.arange(len(rows)), params.svd_components, params.seed)
    return Features(
        rows=rows,
        matrix=np.ascontiguousarray(matrix, dtype=np.float64),
        weighted=full,
        service_protocols=svc_proto,
        service_ports=svc_port,
        service_names=names,
        used=sp.csr_matrix(used[rows]),
        offered=sp.csr_matrix(offered[rows]),
        scalars=np.hstack([scalars, tod])[rows],
        scalar_names=[*SCALAR_NAMES, *TIME_NAMES],
    )


def _no_features(params: ClusteringParams) -> Features:
    """Nothing to cluster (no local device): empty, well-shaped features."""
    empty = np.zeros(0, dtype=np.int64)
    names = [*SCALAR_NAMES, *TIME_NAMES]
    return Features(
        rows=empty,
        matrix=np.zeros((0, params.svd_components)),
        weighted=np.zeros((0, params.svd_components)),
        service_protocols=empty,
        service_ports=empty,
        service_names=[],
        used=sp.csr_matrix((0, 0)),
        offered=sp.csr_matrix((0, 0)),
        scalars=np.zeros((0, len(names))),
        scalar_names=names,
    )


def _scalars(
    snapshot: GraphSnapshot,
    src: Ints,
    dst: Ints,
    flows: Floats,
    port_bucket: Ints,
    out_adj: sp.csr_matrix,
    in_adj: sp.csr_matrix,
    used: sp.csr_matrix,
    offered: sp.csr_matrix,
) -> Floats:
    """Volumes, client/server balance, peer structure and activity per device (see SCALAR_NAMES)."""
    n = snapshot.n_devices
    e = snapshot.edges
    byt = e["bytes"].astype(np.float64)
    pkt = e["packets"].astype(np.float64)
    f_out = np.bincount(src, flows, n)
    f_in = np.bincount(dst, flows, n)
    b_out = np.bincount(src, byt, n)
    b_in = np.bincount(dst, byt, n)
    p_out = np.bincount(src, pkt, n)
    p_in = np.bincount(dst, pkt, n)
    fan_out = np.diff(out_adj.indptr).astype(np.float64)
    fan_in = np.diff(in_adj.indptr).astype(np.float64)
    peers = sp.csr_matrix(out_adj + in_adj)
    peers.data[:] = 1.0
    remote = (~np.asarray(snapshot.local)).astype(np.float64)
    n_peers = np.diff(peers.indptr).astype(np.float64)
    remote_share = (peers @ remote) / np.maximum(n_peers, 1.0)
    total = f_out + f_in

    # Activity: distinct hour and day buckets in which a device started flows, or served a real service.
    # Rows where it only received a stray flow (a scanner's probe of a rare port reaches every device
    # every day) do not count: they would make every device look active all the time.
    hours_first = e["first_seen"] // HOUR_MS
    hours_last = e["last_seen"] // HOUR_MS
    span_h = float(max(1, int(hours_last.max() - hours_first.min() + 1))) if len(e) else 1.0
    served = ~np.isin(port_bucket, (PORT_RARE, PORT_RARE_LOW, PORT_EPHEMERAL))
    act_dev = np.concatenate([src, dst[served]])
    act_first = np.concatenate([hours_first, hours_first[served]])
    act_last = np.concatenate([hours_last, hours_last[served]])
    active_h = _distinct_per_device(np.concatenate([act_dev, act_dev]), np.concatenate([act_first, act_last]), n)
    days = e["day"].astype(np.int64)
    span_d = float(max(1, int(days.max() - days.min() + 1))) if len(e) else 1.0
    active_d = _distinct_per_device(act_dev, np.concatenate([days, days[served]]), n)

    cols = [
        np.log1p(f_out),
        np.log1p(f_in),
        np.log1p(b_out),
        np.log1p(b_in),
        np.log1p(p_out),
        np.log1p(p_in),
        np.log1p(b_out / np.maximum(p_out, 1.0)),
        np.log1p(b_in / np.maximum(p_in, 1.0)),
        f_out / np.maximum(total, 1.0),
        np.log1p(fan_out),
        np.log1p(fan_in),
        remote_share,
        np.log1p(np.diff(used.indptr).astype(np.float64)),
        np.log1p(np.diff(offered.indptr).astype(np.float64)),
        active_h / span_h,
        active_d / span_d,
    ]
    return np.asarray(np.stack(cols, axis=1), dtype=np.float64)


#: Up to this many device × bucket cells, distinct buckets are counted on a dense grid (bytes of memory).
DENSE_DISTINCT_CELLS = 64_000_000


def _distinct_per_device(dev: Ints, bucket: Ints, n: int) -> Floats:
    """How many distinct buckets each device touches (a sparse matrix sums duplicates in C)."""
    if len(dev) == 0:
        return np.zeros(n)
    b = bucket - bucket.min()
    width = int(b.max()) + 1
    if n * width <= DENSE_DISTINCT_CELLS:
        # A dense presence grid (a day of hours: 24 columns) is O(rows); the sparse route sorts every row.
        seen = np.zeros((n, width), dtype=np.bool_)
        seen[dev, b] = True
        return np.asarray(seen.sum(axis=1), dtype=np.float64)
    m = sp.csr_matrix((np.ones(len(dev), dtype=np.int8), (dev, b)), shape=(n, width))
    m.sum_duplicates()
    return np.asarray(np.diff(m.indptr), dtype=np.float64)


def _time_profile(
    first: npt.NDArray[np.int64], last: npt.NDArray[np.int64], src: Ints, dst: Ints, flows: Floats, n: int
) -> Floats:
    """Share of a device's flows per four-hour bin of the UTC day (office hours, always on, at night)."""
    mid = (first // 2 + last // 2) % 86_400_000
    b = (mid // (4 * HOUR_MS)).astype(np.int64)
    idx = np.concatenate([src, dst]) * TIME_BINS + np.concatenate([b, b])
    out = np.bincount(idx, np.concatenate([flows, flows]), n * TIME_BINS).reshape(n, TIME_BINS)
    tot = out.sum(axis=1, keepdims=True)
    tot[tot == 0] = 1.0
    return np.asarray(out / tot, dtype=np.float64)
