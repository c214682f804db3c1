"""The plain, columnar flow table that behavioural clustering reads: what the store's bulk read fills.

It holds behaviour (who talked to whom on which service, how much, when) and, optionally,
identity (AD groups, ISE profile, current SGT). It deliberately has no field for a device's
recorded type or role: clustering must find roles from behaviour, never read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: One row per FLOWS_TO edge (per day bucket): ``src`` used ``dst``'s service ``protocol``/``port``.
EDGE_DTYPE = np.dtype(
    [
        ("src", "i4"),
        ("dst", "i4"),
        ("protocol", "u1"),
        ("port", "u2"),
        ("bytes", "u8"),
        ("packets", "u8"),
        ("flows", "u8"),
        ("first_seen", "i8"),
        ("last_seen", "i8"),
        ("day", "i4"),
    ]
)

# Limits: far above a large campus, low enough to refuse a runaway read before it eats the machine.
MAX_DEVICES = 2_000_000
MAX_EDGES = 100_000_000
MAX_GROUPS_PER_DEVICE = 1_000


class SnapshotError(ValueError):
    """A GraphSnapshot that clustering cannot read; the message says which field and what is accepted."""


@dataclass(frozen=True)
class GraphSnapshot:
    """Devices (by uid) and their flows, indexed by position in ``device_ids``.

    ``local`` marks the site's own endpoints: only those are clustered; remote hosts are peers.
    The identity lists, when given, have one entry per device (``None`` or ``[]`` when unknown).
    ``sgt_names`` maps SGT values to names so recommendations can name existing SGTs.
    """

    device_ids: list[str]
    local: npt.NDArray[np.bool_]
    edges: npt.NDArray[np.void]
    ad_groups: list[list[str]] | None = None
    profile: list[str | None] | None = None
    sgt: list[int | None] | None = None
    sgt_names: dict[int, str] = field(default_factory=dict)

    @property
    def n_devices(self) -> int:
        return len(self.device_ids)

    def validate(self) -> None:
        """Raise SnapshotError naming the first field that is malformed or out of range."""
        n = len(self.device_ids)
        if n > MAX_DEVICES:
            raise SnapshotError(f"GraphSnapshot.device_ids has {n} devices; at most {MAX_DEVICES} are accepted")
        if len(set(self.device_ids)) != n:
            raise SnapshotError("GraphSnapshot.device_ids has duplicates; each device uid must appear once")
        local = np.asarray(self.local)
        if local.dtype != np.bool_ or local.shape != (n,):
            raise SnapshotError(
                f"GraphSnapshot.local must be a bool array of shape ({n},), got {local.dtype} {local.shape}"
            )
        edges = self.edges
        if not isinstance(edges, np.ndarray) or edges.dtype.names is None:
            raise SnapshotError("GraphSnapshot.edges must be a structured numpy array with EDGE_DTYPE fields")
        missing = [f for f in EDGE_DTYPE.names or () if f not in edges.dtype.names]
        if missing:
            raise SnapshotError(f"GraphSnapshot.edges lacks fields {missing}; accepted: EDGE_DTYPE {EDGE_DTYPE}")
        if edges.ndim != 1 or len(edges) > MAX_EDGES:
            raise SnapshotError(f"GraphSnapshot.edges must be 1-D with at most {MAX_EDGES} rows, got {edges.shape}")
        if len(edges):
            for name in ("src", "dst"):
                col = edges[name]
                lo, hi = int(col.min()), int(col.max())
                if lo < 0 or hi >= n:
                    bad = int(np.flatnonzero((col < 0) | (col >= n))[0])
                    raise SnapshotError(
                        f"GraphSnapshot.edges[{bad}].{name}={int(col[bad])} is not a device index "
                        f"(accepted: 0 to {n - 1})"
                    )
            for name in ("bytes", "packets", "flows"):
                if np.issubdtype(edges[name].dtype, np.signedinteger) and int(edges[name].min()) < 0:
                    raise SnapshotError(f"GraphSnapshot.edges.{name} has negative counters")
            bad_time = np.flatnonzero(edges["last_seen"] < edges["first_seen"])
            if len(bad_time):
                i = int(bad_time[0])
                raise SnapshotError(
                    f"GraphSnapshot.edges[{i}] ends before it starts (first_seen={int(edges['first_seen'][i])}, "
                    f"last_seen={int(edges['last_seen'][i])})"
                )
        for name in ("ad_groups", "profile", "sgt"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise SnapshotError(f"GraphSnapshot.{name} has {len(values)} entries; one per device ({n}) is needed")
        if self.ad_groups is not None:
            for i, groups in enumerate(self.ad_groups):
                if groups is not None and len(groups) > MAX_GROUPS_PER_DEVICE:
                    raise SnapshotError(
                        f"GraphSnapshot.ad_groups[{i}] has {len(groups)} groups; at most {MAX_GROUPS_PER_DEVICE}"
                    )
        if self.sgt is not None:
            for i, value in enumerate(self.sgt):
                if value is not None and not (0 <= int(value) <= 65535):
                    raise SnapshotError(f"GraphSnapshot.sgt[{i}]={value!r} is not an SGT (accepted: 0 to 65535)")

    def local_indices(self) -> npt.NDArray[np.int64]:
        """Positions of the devices that clustering assigns (the site's own endpoints)."""
        return np.flatnonzero(np.asarray(self.local)).astype(np.int64)


def empty_edges(n: int = 0) -> npt.NDArray[np.void]:
    """A zeroed edge table of ``n`` rows, for builders that fill columns one by one."""
    return np.zeros(n, dtype=EDGE_DTYPE)
