"""TrustSec configuration from ISE → the graph: SGT names, SGACLs and the deployed egress matrix.

ISE is the authority for these, so its names overwrite others; a matrix cell ISE no longer reports is
removed only when the caller says the list was the complete matrix, and only after it was merged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from clarion.sources.model import EgressCell, SecurityGroup, Sgacl
from clarion.store.port import GraphStore


def merge_security_groups(store: GraphStore, groups: Iterable[SecurityGroup], now_ms: int) -> int:
    """Name SGTs (``SGT.name``, ``description``, ``ise_id``); the last record per value wins."""
    rows = {
        g.value: {"value": g.value, "name": g.name, "description": g.description, "ise_id": g.ise_id} for g in groups
    }
    if not rows:
        return 0
    store.write("merge/identity_security_groups", {"groups": list(rows.values()), "ts": now_ms})
    return len(rows)


def merge_sgacls(store: GraphStore, acls: Iterable[Sgacl], now_ms: int, deleted: Iterable[str] = ()) -> int:
    """Upsert SGACLs by name and remove the ones ISE reported deleted."""
    rows = {
        a.name: {"name": a.name, "aces": a.aces, "ise_id": a.ise_id, "ip_version": a.ip_version,
                 "description": a.description}
        for a in acls
    }  # fmt: skip
    gone = sorted(set(deleted) - rows.keys())
    if not rows and not gone:
        return 0
    store.write("merge/identity_sgacls", {"acls": list(rows.values()), "deleted": gone, "ts": now_ms})
    return len(rows)


def merge_egress_cells(store: GraphStore, cells: Iterable[EgressCell], now_ms: int, *, complete: bool = False) -> int:
    """Merge matrix cells; with ``complete`` the list is the whole matrix and other ISE cells are removed after."""
    rows = {
        (c.src_sgt, c.dst_sgt): {"src": c.src_sgt, "dst": c.dst_sgt, "sgacls": list(c.sgacls),
                                 "default_rule": c.default_rule, "status": c.status, "ise_id": c.ise_id}
        for c in cells
    }  # fmt: skip
    if not rows and not complete:
        return 0
    sync_id = uuid.uuid4().hex
    values = sorted({v for key in rows for v in key})
    store.write(
        "merge/identity_egress", {"sgts": values, "cells": list(rows.values()), "sync_id": sync_id, "ts": now_ms}
    )
    if complete:  # only after the whole matrix is in: a failed merge above raises and deletes nothing
        store.write("merge/identity_egress_cleanup", {"sync_id": sync_id})
    return len(rows)
