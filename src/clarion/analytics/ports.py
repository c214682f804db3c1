"""Flow rows to service codes: ephemeral and rare ports bucketed, (protocol, port) pairs numbered.

Split from ``features`` (the service-profile input): these run over every flow row, so they avoid sorts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

Ints = npt.NDArray[np.int64]

EPHEMERAL_FROM = 49152
#: Bucketed "ports" (outside 0..65535): ephemeral ports, and registered ports too rare to keep alone.
PORT_EPHEMERAL = 65536
PORT_RARE = 65537
PORT_RARE_LOW = 65538
PORTED_PROTOCOLS = (6, 17, 132)


def bucket_ports(
    protocol: npt.NDArray[np.int64], port: npt.NDArray[np.int64], src: Ints, dst: Ints, min_devices: int
) -> npt.NDArray[np.int64]:
    """Bucket ephemeral ports, and ports seen on fewer than ``min_devices`` devices (scans, dynamic RTP ports).

    Rare ports below 1024 and rare ones above go to separate buckets: a stray well-known port
    (a scan, a misconfiguration) is a different signal from a dynamic high port.
    """
    ported = np.isin(protocol, PORTED_PROTOCOLS)
    out = np.where(ported, port, 0)
    out = np.where(ported & (port >= EPHEMERAL_FROM), PORT_EPHEMERAL, out)
    candidates = ported & (port < EPHEMERAL_FROM)
    if candidates.any():
        codes, idx = number_services(protocol[candidates], port[candidates])
        span = int(max(src.max(), dst.max())) + 1
        both = np.concatenate([idx, idx])
        # Devices as rows (each has few codes), so removing duplicate (device, code) pairs sorts short rows.
        devices = sp.csr_matrix(
            (np.ones(len(both), dtype=np.int8), (np.concatenate([src[candidates], dst[candidates]]), both)),
            shape=(span, len(codes)),
        )
        devices.sum_duplicates()
        per_code = np.bincount(devices.indices, minlength=len(codes))
        rare = (per_code < min_devices)[idx]
        sub = out[candidates]
        sub[rare] = np.where(port[candidates][rare] < 1024, PORT_RARE_LOW, PORT_RARE)
        out[candidates] = sub
    return out


def number_services(protocol: npt.NDArray[np.int64], port: npt.NDArray[np.int64]) -> tuple[Ints, Ints]:
    """``np.unique(protocol * 70_000 + port, return_inverse=True)`` by presence tables instead of a sort.

    Protocols are below 256 and ports (with the bucket codes) below 70,000, so each table stays small
    (70,000 cells per protocol seen) and millions of flow rows are numbered in linear time.
    """
    if len(protocol) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    seen = np.zeros(256, dtype=np.bool_)
    seen[protocol] = True
    protos = np.flatnonzero(seen)
    rank = np.cumsum(seen, dtype=np.int64) - 1
    dense = rank[protocol] * 70_000 + port
    present = np.zeros(len(protos) * 70_000, dtype=np.bool_)
    present[dense] = True
    found = np.flatnonzero(present)
    number = np.zeros(len(present), dtype=np.int64)
    number[found] = np.arange(len(found))
    return protos[found // 70_000] * 70_000 + found % 70_000, number[dense]
