"""One identity batch applied in a safe order: TrustSec names and deletes first, then sessions, then correlation.

Each statement is atomic and idempotent, so a failure part-way leaves whole, consistent facts (an SGT
named, a generation of sessions merged) and re-sending the same batch completes it with the same result.
Names go first so sessions that carry only an SGT name resolve; correlation goes last, over the IPs the
sessions bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from clarion.identity.chunk_writer import SessionMergeResult
from clarion.identity.correlate import CorrelationResult, correlate
from clarion.identity.payload import IdentityBatch
from clarion.identity.sessions import merge_sessions
from clarion.identity.trustsec import apply_trustsec_deletes, merge_egress_cells, merge_security_groups, merge_sgacls
from clarion.store.port import GraphStore


@dataclass(frozen=True, slots=True)
class IdentityResult:
    sessions: SessionMergeResult
    correlation: CorrelationResult
    security_groups: int
    sgacls: int
    egress_cells: int
    seconds: float
    deleted_security_groups: int = 0

    def as_json(self) -> dict[str, object]:
        s, c = self.sessions, self.correlation
        return {
            "sessions": s.sessions, "generations": s.generations, "skipped_users": s.skipped_users,
            "unresolved_sgt_names": sorted(s.unresolved_sgt_names), "security_groups": self.security_groups,
            "sgacls": self.sgacls, "egress_cells": self.egress_cells,
            "deleted_security_groups": self.deleted_security_groups, "correlated_flows": c.moved,
            "ambiguous_flows": c.ambiguous, "seconds": round(self.seconds, 4),
        }  # fmt: skip


def apply_identity(store: GraphStore, batch: IdentityBatch, now_ms: int | None = None) -> IdentityResult:
    """Merge a validated identity batch and attach IP-only flow endpoints the new bindings explain."""
    t0 = time.perf_counter()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    n_groups = merge_security_groups(store, batch.security_groups, now)
    n_acls = merge_sgacls(store, batch.sgacls, now, batch.deleted_sgacls)
    n_cells = merge_egress_cells(store, batch.egress_cells, now, complete=batch.egress_complete)
    names = {g.name: g.value for g in batch.security_groups}
    # ISE's delete is applied after the merges, before sessions; a group the same batch names is not deleted
    gone = [v for v in batch.deleted_security_groups if v not in names.values()]
    n_deleted = apply_trustsec_deletes(store, sgt_values=gone, now_ms=now) if gone else 0
    sessions = merge_sessions(store, batch.sessions, sgt_by_name=names)
    corr = correlate(store, sessions.ips) if sessions.ips else CorrelationResult()
    return IdentityResult(
        sessions=sessions, correlation=corr, security_groups=n_groups, sgacls=n_acls, egress_cells=n_cells,
        seconds=time.perf_counter() - t0, deleted_security_groups=n_deleted,
    )  # fmt: skip
