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

from clarion.sources.ers import ERSClient
from clarion.sources.ers_models import ANY_SGT_VALUE, TrustSecConfig
from clarion.sources.model import EgressCell, SecurityGroup, Sgacl
from clarion.store.port import GraphStore


@dataclass(frozen=True, slots=True)
class TrustSecSyncResult:
    """What one complete ERS read merged, and how many ISE objects it found gone (removed or retired)."""

    security_groups: int
    sgacls: int
    egress_cells: int
    removed_sgacls: int
    deleted_sgts: int  # SGT definitions this read found gone from ISE (marked ise_deleted_at)
    removed_sgts: int  # SGT nodes ISE deleted that nothing refers to any more: removed
    seconds: float


def merge_security_groups(
    store: GraphStore, groups: Iterable[SecurityGroup], now_ms: int, *, sync_id: str | None = None
) -> int:
    """Name SGTs (``SGT.name``, ``description``, ``ise_id``); the last record per value wins.

    ``sync_id`` stamps the groups as seen by that complete ERS read (its cleanup keys on the stamp).
    """
    rows = {
        g.value: {"value": g.value, "name": g.name, "description": g.description, "ise_id": g.ise_id} for g in groups
    }
    if not rows:
        return 0
    store.write("merge/identity_security_groups", {"groups": list(rows.values()), "sync_id": sync_id, "ts": now_ms})
    return len(rows)


def merge_sgacls(
    store: GraphStore, acls: Iterable[Sgacl], now_ms: int, deleted: Iterable[str] = (), *, sync_id: str | None = None
) -> int:
    """Upsert SGACLs by name and remove the ones ISE reported deleted."""
    rows = {
        a.name: {"name": a.name, "aces": a.aces, "ise_id": a.ise_id, "ip_version": a.ip_version,
                 "description": a.description}
        for a in acls
    }  # fmt: skip
    gone = sorted(set(deleted) - rows.keys())
    if not rows and not gone:
        return 0
    store.write(
        "merge/identity_sgacls", {"acls": list(rows.values()), "deleted": gone, "sync_id": sync_id, "ts": now_ms}
    )
    return len(rows)


def merge_egress_cells(
    store: GraphStore, cells: Iterable[EgressCell], now_ms: int, *, complete: bool = False, sync_id: str | None = None
) -> int:
    """Merge matrix cells; with ``complete`` the list is the whole matrix and other ISE cells are removed after."""
    rows = {
        (c.src_sgt, c.dst_sgt): {"src": c.src_sgt, "dst": c.dst_sgt, "sgacls": list(c.sgacls),
                                 "default_rule": c.default_rule, "status": c.status, "ise_id": c.ise_id}
        for c in cells
    }  # fmt: skip
    if not rows and not complete:
        return 0
    sync_id = sync_id or uuid.uuid4().hex
    values = sorted({v for key in rows for v in key})
    store.write(
        "merge/identity_egress", {"sgts": values, "cells": list(rows.values()), "sync_id": sync_id, "ts": now_ms}
    )
    if complete:  # only after the whole matrix is in: a failed merge above raises and deletes nothing
        store.write("merge/identity_egress_cleanup", {"sync_id": sync_id})
    return len(rows)


def sync_trustsec(store: GraphStore, config: TrustSecConfig, now_ms: int | None = None) -> TrustSecSyncResult:
    """Make the graph's ISE TrustSec facts equal a *complete* ERS read (all three lists, read without error).

    Merges first (each write raises on failure, so a failed sync removes nothing), then removes the matrix
    cells, SGACLs and SGT definitions ISE no longer lists. Pass only what :meth:`ERSClient.read_trustsec`
    returned: a partial list here would delete what it left out.
    """
    t0 = time.perf_counter()
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    sync_id = uuid.uuid4().hex
    n_groups = merge_security_groups(store, config.security_groups, ts, sync_id=sync_id)
    n_acls = merge_sgacls(store, config.sgacls, ts, sync_id=sync_id)
    n_cells = merge_egress_cells(store, config.cells, ts, complete=True, sync_id=sync_id)
    rows = store.write("merge/identity_trustsec_cleanup", {"sync_id": sync_id, "ts": ts, "any": ANY_SGT_VALUE})
    found = rows[0] if rows else {}
    return TrustSecSyncResult(
        security_groups=n_groups, sgacls=n_acls, egress_cells=n_cells,
        removed_sgacls=int(found.get("removed_sgacls", 0)), deleted_sgts=int(found.get("deleted_sgts", 0)),
        removed_sgts=int(found.get("removed_sgts", 0)), seconds=time.perf_counter() - t0,
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
