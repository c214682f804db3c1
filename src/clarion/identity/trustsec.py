"""TrustSec configuration from ISE → the graph: SGT names, SGACLs and the deployed egress matrix.

ISE is the authority for these, so its names overwrite others. What ISE deleted leaves the graph in two
ways, both scoped to what ISE defined: a *complete* ERS read (:func:`sync_trustsec`) removes, after
everything it read was merged, whatever ISE defined before and no longer lists; an explicit delete event
(pxGrid TrustSec topics, :func:`apply_trustsec_deletes`) removes that one object at once. An SGT that devices
still carry is not removed but marked ``ise_deleted_at`` (see docs/decisions/0010-ad-and-trustsec-deletions.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clarion.sources.ers import ERSClient
from clarion.sources.ers_models import ANY_SGT_VALUE, TrustSecConfig
from clarion.sources.model import EgressCell, SecurityGroup, Sgacl
from clarion.store.port import GraphStore


@dataclass(frozen=True, slots=True)
class Changes:
    """How one kind of ISE object in the graph changed in one complete sync (``removed``: ISE no longer lists it)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def read(self) -> int:
        """How many ISE lists now (each one added, updated or unchanged)."""
        return self.added + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class TrustSecSyncResult:
    """What one complete ERS read changed in the graph, per kind, applied all at once.

    ``sgts.removed`` counts SGT definitions ISE no longer lists (found deleted by this read); of all SGTs ISE
    deleted, ``removed_sgt_nodes`` nodes were removed because nothing refers to them any more and
    ``kept_deleted_sgts`` stay, marked deleted, because devices still carry them.
    """

    sgts: Changes
    sgacls: Changes
    cells: Changes
    removed_sgt_nodes: int
    kept_deleted_sgts: int
    seconds: float


Rows = dict[Any, dict[str, Any]]


def _group_rows(groups: Iterable[SecurityGroup]) -> Rows:
    return {g.value: {"value": g.value, "name": g.name, "description": g.description, "ise_id": g.ise_id}
            for g in groups}  # fmt: skip


def _acl_rows(acls: Iterable[Sgacl]) -> Rows:
    return {a.name: {"name": a.name, "aces": a.aces, "ise_id": a.ise_id, "ip_version": a.ip_version,
                     "description": a.description} for a in acls}  # fmt: skip


def _cell_rows(cells: Iterable[EgressCell]) -> Rows:
    return {(c.src_sgt, c.dst_sgt): {"src": c.src_sgt, "dst": c.dst_sgt, "sgacls": list(c.sgacls),
                                     "default_rule": c.default_rule, "status": c.status, "ise_id": c.ise_id}
            for c in cells}  # fmt: skip


def merge_security_groups(store: GraphStore, groups: Iterable[SecurityGroup], now_ms: int) -> int:
    """Name SGTs (``SGT.name``, ``description``, ``ise_id``); the last record per value wins."""
    rows = _group_rows(groups)
    if not rows:
        return 0
    store.write("merge/identity_security_groups", {"groups": list(rows.values()), "ts": now_ms})
    return len(rows)


def merge_sgacls(store: GraphStore, acls: Iterable[Sgacl], now_ms: int, deleted: Iterable[str] = ()) -> int:
    """Upsert SGACLs by name and remove the ones ISE reported deleted."""
    rows = _acl_rows(acls)
    gone = sorted(set(deleted) - rows.keys())
    if not rows and not gone:
        return 0
    store.write("merge/identity_sgacls", {"acls": list(rows.values()), "deleted": gone, "ts": now_ms})
    return len(rows)


def merge_egress_cells(store: GraphStore, cells: Iterable[EgressCell], now_ms: int, *, complete: bool = False) -> int:
    """Merge matrix cells; with ``complete`` the list is the whole matrix and other ISE cells are removed, in the
    same statement (a failure leaves the old matrix whole)."""
    rows = _cell_rows(cells)
    if not rows and not complete:
        return 0
    values = sorted({v for key in rows for v in key})
    store.write(
        "merge/identity_egress",
        {"sgts": values, "cells": list(rows.values()), "complete": complete, "sync_id": uuid.uuid4().hex,
         "ts": now_ms},
    )  # fmt: skip
    return len(rows)


def _changes(before: Rows, now: Rows, removed: int) -> Changes:
    """Compare what ISE lists now with what the graph held from ISE (same row shape, keyed alike)."""
    added = sum(1 for key in now if key not in before)
    unchanged = sum(1 for key, row in now.items() if before.get(key) == row)
    return Changes(added=added, updated=len(now) - added - unchanged, unchanged=unchanged, removed=removed)


def _held(store: GraphStore) -> tuple[Rows, Rows, Rows]:
    """What the graph holds from ISE now, keyed and shaped like the rows a sync writes."""
    groups = {r["value"]: dict(r) for r in store.read("query/identity_trustsec_ise_sgts")}
    acls = {r["name"]: dict(r) for r in store.read("query/identity_trustsec_ise_sgacls")}
    cells = {(r["src"], r["dst"]): {**r, "sgacls": list(r["sgacls"] or [])}
             for r in store.read("query/identity_trustsec_ise_cells")}  # fmt: skip
    return groups, acls, cells


def sync_trustsec(store: GraphStore, config: TrustSecConfig, now_ms: int | None = None) -> TrustSecSyncResult:
    """Make the graph's ISE TrustSec facts equal a *complete* ERS read (all three lists, read without error).

    Everything (merges, then removal of the cells, SGACLs and SGT definitions ISE no longer lists) is one
    statement, so a store failure leaves the graph as it was and a re-run converges. Pass only what
    :meth:`ERSClient.read_trustsec` returned: a partial list here would delete what it left out.
    """
    t0 = time.perf_counter()
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    groups, acls, cells = _group_rows(config.security_groups), _acl_rows(config.sgacls), _cell_rows(config.cells)
    held_groups, held_acls, held_cells = _held(store)
    rows = store.write(
        "merge/identity_trustsec_sync",
        {
            "groups": list(groups.values()), "acls": list(acls.values()),
            "sgts": sorted({v for key in cells for v in key}), "cells": list(cells.values()),
            "sync_id": uuid.uuid4().hex, "ts": ts, "any": ANY_SGT_VALUE,
        },
    )  # fmt: skip
    found = rows[0]
    return TrustSecSyncResult(
        sgts=_changes(held_groups, groups, int(found["deleted_sgts"])),
        sgacls=_changes(held_acls, acls, int(found["removed_sgacls"])),
        cells=_changes(held_cells, cells, int(found["removed_cells"])),
        removed_sgt_nodes=int(found["removed_sgts"]), kept_deleted_sgts=int(found["kept_deleted_sgts"]),
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


async def read_and_sync_trustsec(store: GraphStore, client: ERSClient, now_ms: int | None = None) -> TrustSecSyncResult:
    """Read SGTs, SGACLs and the matrix from ERS (all or nothing), then :func:`sync_trustsec` off the loop."""
    config = await client.read_trustsec()  # an ERSError here leaves the graph untouched
    return await asyncio.to_thread(sync_trustsec, store, config, now_ms)


def apply_trustsec_deletes(
    store: GraphStore, *, sgt_values: Iterable[int] = (), sgacl_names: Iterable[str] = (), now_ms: int
) -> int:
    """ISE said it deleted these (pxGrid ``securityGroupTopic`` operation DELETE, ``securityGroupAclTopic``
    ``deleted``/``isDeleted``): the pxGrid consumer calls this. SGACLs go; an SGT loses its ISE matrix cells
    and goes, or is kept with ``ise_deleted_at`` while devices still carry it. Returns how many were named."""
    values = sorted({int(v) for v in sgt_values})
    names = sorted(set(sgacl_names))
    for v in values:
        if not 0 <= v <= ANY_SGT_VALUE:
            raise ValueError(f"SGT value {v} is not a tag 0..{ANY_SGT_VALUE}")
    if not values and not names:
        return 0
    store.write("merge/identity_trustsec_deleted", {"values": values, "names": names, "ts": now_ms})
    return len(values) + len(names)
