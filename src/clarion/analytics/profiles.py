"""Service and identity profiles per device: what it uses and offers (by service family), and who it belongs to.

Split from ``features``: the first-order service block and the optional identity block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from clarion.analytics.ports import PORT_EPHEMERAL, PORT_RARE, PORT_RARE_LOW
from clarion.analytics.projection import l2_rows, tfidf
from clarion.analytics.snapshot import GraphSnapshot
from clarion.ingest.transform import PROTOCOL_NAMES

Ints = npt.NDArray[np.int64]


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


def family_matrix(protocols: npt.NDArray[np.int64], ports: npt.NDArray[np.int64]) -> sp.csr_matrix:
    """services × families: 1 where a service column belongs to a family (SERVICE_FAMILIES), else its own column."""
    keys = [SERVICE_FAMILIES.get((int(p), int(q)), f"{p}/{q}") for p, q in zip(protocols, ports, strict=True)]
    index = {k: j for j, k in enumerate(dict.fromkeys(keys))}
    cols = np.array([index[k] for k in keys], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(keys)), (np.arange(len(keys)), cols)), shape=(len(keys), len(index)))


def service_profile(used: sp.csr_matrix, offered: sp.csr_matrix, rows: Ints) -> sp.csr_matrix:
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
    return l2_rows(sp.csr_matrix(share @ sp.diags(idf)))


def identity_tokens(snapshot: GraphSnapshot, rows: Ints) -> sp.csr_matrix | None:
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
            parts.append(tfidf(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(names))), rows))
    if snapshot.ad_groups is not None:
        vocab = {g: j for j, g in enumerate(sorted({g for gs in snapshot.ad_groups for g in gs or ()}))}
        r = [i for i, gs in enumerate(snapshot.ad_groups) for _ in gs or ()]
        c = [vocab[g] for gs in snapshot.ad_groups for g in gs or ()]
        if vocab:
            parts.append(tfidf(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(vocab))), rows))
    if not parts:
        return None
    return sp.csr_matrix(sp.hstack(parts) * (1.0 / np.sqrt(len(parts))))
