"""A second look at the devices HDBSCAN left as noise: small groups of servers of one service.

The global run's density scale is set by the big client populations (``min_cluster_size`` is 0.25 % of
the devices). A small server role (a few hundred DHCP servers among 100,000 devices) hangs off a
bigger server group in the condensed tree and falls out of it as noise when the group is selected.
Re-clustered among the noise alone, in the noise's own projection, with a smaller minimum size and
leaf selection, such servers form a tight group again. A group found this way is kept only as one a
network engineer would name: the servers of one service that few devices on the site serve (at most
``SERVED_RARITY`` of them) and that at least ``SERVED_SHARE`` of the group serve; members of the group
that do not serve it stay noise. Everything else stays noise: devices hit by scans or with odd mixes
are what a person should look at, not a cluster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from clarion.analytics.clustering import Partition, canonical_labels, hdbscan_labels, project
from clarion.analytics.ports import PORT_EPHEMERAL

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Minimum size of a group found among the noise, as a fraction of the global min_cluster_size.
NOISE_SIZE_DIVISOR = 4
#: Smallest group found among the noise, in devices.
NOISE_MIN_SIZE = 10
#: A group is kept when at least this share of its members serve one common service ...
SERVED_SHARE = 0.6
#: ... that at most this share of all clustered devices serve (ping or SNMP, answered by every managed
#: device, does not make a role; bucketed rare and ephemeral ports never count).
SERVED_RARITY = 0.1


def recluster_noise(
    weighted: Floats,
    offered: sp.csr_matrix,
    service_ports: Ints,
    part: Partition,
    keys: list[str],
    min_cluster_size: int,
    min_samples: int,
    dims: int,
    rank: Ints | None = None,
) -> Partition:
    """Give dense groups of noise devices that serve one uncommon service their own cluster; the rest stays noise."""
    idx = np.flatnonzero(part.labels < 0)
    size = max(NOISE_MIN_SIZE, min_cluster_size // NOISE_SIZE_DIVISOR)
    if len(idx) < 2 * size:
        return part
    x = project(weighted[idx] - weighted[idx].mean(axis=0), dims)
    inner, inner_probs = hdbscan_labels(x, size, min(min_samples, size), leaf=True)
    if inner.max(initial=-1) < 0:
        return part
    serves = offered > 0
    common = np.asarray(serves.mean(axis=0)).ravel() > SERVED_RARITY
    bucket = np.asarray(service_ports) >= PORT_EPHEMERAL
    eligible = ~(common | bucket)
    labels = part.labels.copy()
    probs = part.probabilities.copy()
    next_label = part.n_clusters
    for g in range(int(inner.max()) + 1):
        in_group = inner == g
        share = np.where(eligible, np.asarray(serves[idx[in_group]].mean(axis=0)).ravel(), 0.0)
        service = int(np.argmax(share))  # the first of equals: deterministic
        if share[service] < SERVED_SHARE:
            continue
        keep = in_group & np.asarray(serves[idx, service].todense()).ravel()
        if int(keep.sum()) < size:
            continue
        labels[idx[keep]] = next_label
        probs[idx[keep]] = inner_probs[keep]
        next_label += 1
    if next_label == part.n_clusters:
        return part
    return Partition(canonical_labels(labels, keys, rank), probs, part.fitted_rows)
