"""Apply an EdgeGraph exactly once: look up its batch record, else merge it with the record.

The lookup answers replays cheaply; the unique (agent_id, seq) constraint makes the write
itself safe when two copies race (the loser's whole query rolls back and is re-classified).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from clarion.ingest.transform import PreparedBatch, prepare
from clarion.store.port import BatchConflictError, GraphStore
from clarion_edge import wire


class SeqConflictError(Exception):
    """The same (agent_id, seq) was applied before with other content."""

    def __init__(self, agent_id: str, seq: int, stored: str, given: str) -> None:
        super().__init__(
            f"batch seq {seq} of agent {agent_id!r} was already applied with digest {stored}; this body has {given}. "
            "An agent must never reuse a seq for other content (check that its state directory survived)."
        )
        self.agent_id, self.seq, self.stored, self.given = agent_id, seq, stored, given


@dataclass(frozen=True, slots=True)
class MergeResult:
    applied: bool
    duplicate: bool
    batch: PreparedBatch
    seconds: float

    def as_json(self) -> dict[str, object]:
        b = self.batch
        return {
            "applied": self.applied, "duplicate": self.duplicate, "agent_id": b.agent_id, "seq": b.seq,
            "digest": b.digest, "nodes": b.n_nodes, "edges": b.n_edges,
        }  # fmt: skip


def merge(store: GraphStore, graph: wire.EdgeGraph) -> MergeResult:
    """Merge one validated EdgeGraph; raise SeqConflictError for a conflicting replay."""
    t0 = time.perf_counter()
    batch = prepare(graph, applied_at_ms=int(time.time() * 1000))
    if _classify(store, batch):
        return MergeResult(applied=False, duplicate=True, batch=batch, seconds=time.perf_counter() - t0)
    try:
        store.write("merge/batch", batch.params)
    except BatchConflictError:
        # another request applied this (agent_id, seq) between our lookup and our write
        if _classify(store, batch):
            return MergeResult(applied=False, duplicate=True, batch=batch, seconds=time.perf_counter() - t0)
        raise
    return MergeResult(applied=True, duplicate=False, batch=batch, seconds=time.perf_counter() - t0)


def _classify(store: GraphStore, batch: PreparedBatch) -> bool:
    """True when this exact batch was applied; raise when the seq was used for other content."""
    rows = store.read("query/batch_lookup", {"agent_id": batch.agent_id, "seq": batch.seq})
    if not rows:
        return False
    stored = str(rows[0]["digest"])
    if stored != batch.digest:
        raise SeqConflictError(batch.agent_id, batch.seq, stored, batch.digest)
    return True
