"""Readable cluster labels and reasons: the services that set a cluster apart, named as an engineer would.

A label reads ``printers: serves tcp/9100 jetdirect, tcp/515 lpd``: a word from the service that
best distinguishes the cluster (``SERVICES`` below: well-known port -> name, what its servers and
its clients are called), then up to three distinguishing services in the same direction.
Reasons list the features (services and numbers) whose share or mean differs most from the rest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from clarion.analytics.features import Features
from clarion.analytics.model import Reason

TCP, UDP, ICMP = 6, 17, 1
Ints = npt.NDArray[np.int64]

#: (protocol, port) -> (service name, what devices serving it are, what devices using it are).
SERVICES: dict[tuple[int, int], tuple[str, str, str]] = {
    (TCP, 9100): ("jetdirect", "printers", "print spoolers"),
    (TCP, 515): ("lpd", "printers", "print spoolers"),
    (TCP, 631): ("ipp", "printers", "print clients"),
    (TCP, 554): ("rtsp", "cameras", "video recorders"),
    (UDP, 5060): ("sip", "call managers", "phones"),
    (TCP, 5060): ("sip", "call managers", "phones"),
    (TCP, 5061): ("sip-tls", "call managers", "phones"),
    (TCP, 2000): ("sccp", "call managers", "phones"),
    (TCP, 6970): ("phone config", "call managers", "phones"),
    (TCP, 1720): ("h323", "video endpoints", "video endpoints"),
    (UDP, 5004): ("rtp", "media servers", "video endpoints"),
    (UDP, 3478): ("stun", "conferencing relays", "conferencing clients"),
    (UDP, 3479): ("teams media", "conferencing relays", "conferencing clients"),
    (UDP, 3480): ("teams media", "conferencing relays", "conferencing clients"),
    (UDP, 3481): ("teams media", "conferencing relays", "conferencing clients"),
    (UDP, 4500): ("ipsec nat-t", "vpn gateways", "mobile devices"),
    (TCP, 10123): ("sccm notification", "management points", "windows clients"),
    (TCP, 8400): ("backup agent", "backup servers", "backup clients"),
    (TCP, 7680): ("delivery optimization", "windows clients", "windows clients"),
    (UDP, 47808): ("bacnet", "building controllers", "building management"),
    (TCP, 502): ("modbus", "building controllers", "building management"),
    (TCP, 3001): ("access control", "access control servers", "badge readers"),
    (TCP, 1883): ("mqtt", "mqtt brokers", "iot sensors"),
    (TCP, 8883): ("mqtt-tls", "mqtt brokers", "iot sensors"),
    (UDP, 5683): ("coap", "coap servers", "iot sensors"),
    (TCP, 1433): ("mssql", "database servers", "database clients"),
    (TCP, 3306): ("mysql", "database servers", "database clients"),
    (TCP, 5432): ("postgresql", "database servers", "database clients"),
    (TCP, 1521): ("oracle", "database servers", "database clients"),
    (TCP, 88): ("kerberos", "domain controllers", "domain members"),
    (UDP, 88): ("kerberos", "domain controllers", "domain members"),
    (TCP, 389): ("ldap", "domain controllers", "domain members"),
    (UDP, 389): ("ldap", "domain controllers", "domain members"),
    (TCP, 636): ("ldaps", "domain controllers", "domain members"),
    (TCP, 3268): ("global catalog", "domain controllers", "domain members"),
    (TCP, 135): ("msrpc", "windows servers", "windows clients"),
    (UDP, 53): ("dns", "dns servers", "dns clients"),
    (TCP, 53): ("dns", "dns servers", "dns clients"),
    (TCP, 853): ("dns-over-tls", "dns servers", "mobile devices"),
    (UDP, 67): ("dhcp", "dhcp servers", "dhcp clients"),
    (TCP, 647): ("dhcp failover", "dhcp servers", "dhcp servers"),
    (TCP, 445): ("smb", "file servers", "file clients"),
    (TCP, 139): ("netbios", "file servers", "file clients"),
    (TCP, 2049): ("nfs", "file servers", "file clients"),
    (TCP, 80): ("http", "web servers", "web clients"),
    (TCP, 443): ("https", "web servers", "web clients"),
    (UDP, 443): ("quic", "web servers", "web clients"),
    (TCP, 8080): ("http-alt", "web servers", "web clients"),
    (TCP, 8443): ("https-alt", "web servers", "web clients"),
    (TCP, 25): ("smtp", "mail servers", "mail senders"),
    (TCP, 587): ("submission", "mail servers", "mail clients"),
    (TCP, 993): ("imaps", "mail servers", "mail clients"),
    (TCP, 143): ("imap", "mail servers", "mail clients"),
    (TCP, 5223): ("apple push", "push services", "mobile devices"),
    (TCP, 5228): ("google push", "push services", "mobile devices"),
    (UDP, 161): ("snmp", "managed devices", "monitoring servers"),
    (ICMP, 0): ("ping", "managed devices", "monitoring servers"),
    (UDP, 162): ("snmp-trap", "monitoring servers", "managed devices"),
    (UDP, 514): ("syslog", "log collectors", "log senders"),
    (UDP, 69): ("tftp", "tftp servers", "phones"),
    (TCP, 22): ("ssh", "ssh servers", "admin hosts"),
    (TCP, 3389): ("rdp", "rdp hosts", "admin hosts"),
    (TCP, 5985): ("winrm", "windows servers", "admin hosts"),
    (UDP, 123): ("ntp", "time servers", "ntp clients"),
    (TCP, 10000): ("ndmp backup", "servers", "backup servers"),
    (TCP, 3260): ("iscsi", "storage", "storage clients"),
    (UDP, 1812): ("radius", "radius servers", "network devices"),
}

#: Services too common to name a cluster by (nearly everything uses them, or every managed device
#: answers them); they name a cluster only when nothing else sets it apart, and still show in reasons.
GENERIC = {
    (UDP, 53),
    (UDP, 67),
    (UDP, 123),
    (TCP, 443),
    (UDP, 443),
    (TCP, 80),
    (UDP, 514),
    (UDP, 161),
    (ICMP, 0),
    (TCP, 10000),
}
SHARE_FLOOR = 0.01  # smoothing of shares in lifts, so a service absent elsewhere does not divide by zero


@dataclass(frozen=True)
class ClusterDescription:
    label: str
    word: str
    reasons: list[Reason]


def _service_title(f: Features, j: int) -> str:
    key = (int(f.service_protocols[j]), int(f.service_ports[j]))
    name = f.service_names[j]
    entry = SERVICES.get(key)
    return f"{name} {entry[0]}" if entry else name


def describe_clusters(
    f: Features, labels: Ints, profiles: list[str | None] | None = None, max_reasons: int = 6
) -> list[ClusterDescription]:
    """One description per cluster label 0..k-1 (``labels`` per feature row, -1 noise)."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if k == 0:
        return []
    n = len(labels)
    clustered = labels >= 0
    ind = sp.csr_matrix((np.ones(int(clustered.sum())), (labels[clustered], np.flatnonzero(clustered))), shape=(k, n))
    size = np.asarray(ind.sum(axis=1)).ravel()
    used_b = (f.used > 0).astype(np.float64)
    off_b = (f.offered > 0).astype(np.float64)
    shares = {}
    for direction, m in (("uses", used_b), ("serves", off_b)):
        in_count = np.asarray((ind @ m).todense())
        total = np.asarray(m.sum(axis=0)).ravel()
        member = in_count / size[:, None]
        other = (total[None, :] - in_count) / np.maximum(n - size[:, None], 1)
        shares[direction] = (member, other)
    sc = f.scalars
    sc_mean_all = sc.mean(axis=0)
    sc_std = sc.std(axis=0)
    sc_std[sc_std < 1e-9] = 1.0
    sc_sum = np.asarray(ind @ sc)
    out = []
    for c in range(k):
        out.append(
            _describe_one(
                f, c, shares, sc_sum[c] / size[c], (sc_mean_all * n - sc_sum[c]) / max(n - size[c], 1), sc_std,
                _dominant_profile(profiles, f.rows[labels == c]) if profiles is not None else None, max_reasons,
            )
        )  # fmt: skip
    return out


def _dominant_profile(profiles: list[str | None], rows: Ints) -> tuple[str, float] | None:
    counts = Counter(p for p in (profiles[int(i)] for i in rows) if p and p != "Unknown")
    if not counts:
        return None
    name, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    share = count / len(rows)
    return (name, share) if share >= 0.5 else None


def _describe_one(
    f: Features,
    c: int,
    shares: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    sc_in: npt.NDArray[np.float64],
    sc_out: npt.NDArray[np.float64],
    sc_std: npt.NDArray[np.float64],
    profile: tuple[str, float] | None,
    max_reasons: int,
) -> ClusterDescription:
    candidates: list[tuple[float, str, int, float, float, float]] = []
    for direction, (member, other) in shares.items():
        m, o = member[c], other[c]
        lift = (m + SHARE_FLOOR) / (o + SHARE_FLOOR)
        for j in np.flatnonzero((m >= 0.3) & (lift >= 1.5)):
            # Coverage counts twice: a cluster is named after what (nearly) all its members do, not
            # after a telling extra half of them have (laptops: Teams media before direct IPP printing).
            score = float(m[j] ** 2 * np.log(lift[j]))
            candidates.append((score, direction, int(j), float(m[j]), float(o[j]), float(lift[j])))
    # Order by score, ties by name, so equal input gives equal labels.
    candidates.sort(key=lambda t: (-t[0], t[1], f.service_names[t[2]]))

    word, direction, source = _word(f, candidates, sc_in, sc_out)
    same_dir = [t for t in candidates if t[1] == direction]
    # The service that gave the word leads; then the next most distinguishing ones.
    same_dir = sorted(same_dir, key=lambda t: t[2] != source)[:3]
    label = word
    if same_dir:
        label = f"{word}: {direction} " + ", ".join(_service_title(f, t[2]) for t in same_dir)
    if profile is not None:
        label += f" (ISE profile {profile[0]} {profile[1]:.0%})"

    reasons = [
        Reason(
            feature=f"{direction} {f.service_names[j]}",
            text=f"{direction} {_service_title(f, j)}: {m:.0%} of members, {o:.1%} of other devices",
            member_value=m,
            other_value=o,
            score=lift,
        )
        for _, direction, j, m, o, lift in candidates[: max_reasons - 2]
    ]
    z = (sc_in - sc_out) / sc_std
    for j in sorted(np.flatnonzero(np.abs(z) >= 1.0), key=lambda j: (-abs(z[j]), j))[:2]:
        name = f.scalar_names[j]
        reasons.append(
            Reason(
                feature=name,
                text=f"{name}: {sc_in[j]:.2f} among members, {sc_out[j]:.2f} among other devices (z {z[j]:+.1f})",
                member_value=float(sc_in[j]),
                other_value=float(sc_out[j]),
                score=float(z[j]),
            )
        )
    return ClusterDescription(label=label, word=word, reasons=reasons)


def _word(
    f: Features,
    candidates: list[tuple[float, str, int, float, float, float]],
    sc_in: npt.NDArray[np.float64],
    sc_out: npt.NDArray[np.float64],
) -> tuple[str, str, int]:
    """The human word for a cluster, the direction its label lists services in, and the service it came from."""
    for generic_ok in (False, True):
        for _, direction, j, _m, _o, _lift in candidates:
            key = (int(f.service_protocols[j]), int(f.service_ports[j]))
            if key in SERVICES and (generic_ok or key not in GENERIC):
                entry = SERVICES[key]
                return (entry[1] if direction == "serves" else entry[2]), direction, j
    if candidates:
        _, direction, j, *_ = candidates[0]
        kind = "servers of" if direction == "serves" else "clients of"
        return f"{kind} {f.service_names[j]}", direction, j
    client_share = f.scalar_names.index("client share of flows")
    return ("clients" if sc_in[client_share] >= 0.5 else "servers"), "uses", -1
