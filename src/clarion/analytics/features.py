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
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from clarion.analytics.activity import SCALAR_NAMES, TIME_NAMES, device_scalars, time_profile
from clarion.analytics.model import ClusteringParams
from clarion.analytics.ports import PORT_EPHEMERAL, PORT_RARE, PORT_RARE_LOW, bucket_ports, number_services
from clarion.analytics.profiles import SERVICE_FAMILIES, family_matrix, identity_tokens, service_name, service_profile
from clarion.analytics.projection import row_mean, standardise, svd
from clarion.analytics.snapshot import GraphSnapshot

__all__ = [
    "PORT_EPHEMERAL", "PORT_RARE", "PORT_RARE_LOW", "SCALAR_NAMES", "SERVICE_FAMILIES", "TIME_NAMES", "Features",
    "build_features", "service_name",
]  # fmt: skip

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

SERVICE_COMPONENTS = 30  # the service profile (two hundred-odd columns) is reduced to this first
IDENTITY_COMPONENTS = 8


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
    fam = family_matrix(svc_proto, svc_port)
    services = service_profile(sp.csr_matrix(used @ fam), sp.csr_matrix(offered @ fam), rows)
    z = svd(services, rows, SERVICE_COMPONENTS, params.seed)

    # Peers (second order): the mean service vector of the servers a device reaches and of its clients.
    ones = np.ones(len(e))
    out_adj = sp.csr_matrix((ones, (src, dst)), shape=(n, n))
    out_adj.data[:] = 1.0
    in_adj = sp.csr_matrix(out_adj.T)
    peers_out = row_mean(out_adj[rows], z)
    peers_in = row_mean(in_adj[rows], z)

    scalars = device_scalars(snapshot, src, dst, flows, port, out_adj, in_adj, used, offered)
    tod = time_profile(e["first_seen"], e["last_seen"], src, dst, flows, n)

    half = 1.0 / np.sqrt(2.0)
    blocks: list[Floats] = [
        z[rows] * params.services_weight,
        peers_out * (params.peers_weight * half),
        peers_in * (params.peers_weight * half),
        standardise(scalars, rows)[rows] * (params.volume_weight / np.sqrt(scalars.shape[1])),
        standardise(tod, rows)[rows] * (params.time_weight / np.sqrt(tod.shape[1])),
    ]
    if params.identity_weight > 0:
        ident = identity_tokens(snapshot, rows)
        if ident is not None:
            blocks.append(svd(ident, rows, IDENTITY_COMPONENTS, params.seed)[rows] * params.identity_weight)
    full = np.hstack(blocks)
    if len(rows) == 0:
        matrix = np.zeros((0, params.svd_components))
    else:
        matrix = svd(full, np.arange(len(rows)), params.svd_components, params.seed)
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
