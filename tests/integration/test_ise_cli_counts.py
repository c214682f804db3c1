"""``clarion ise sync`` summary counts and store failures, through the real CLI against the fake ISE ERS over real
HTTPS and a real embedded FalkorDB: exact added/updated/unchanged/removed counts per kind, and a store failing part
way leaves the previous policy, says so, and a re-run gives the graph a clean run gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import Row, StoreError
from tests.fakes.ers.server import ERSServer
from tests.fakes.pxgrid.certs import Pki
from tests.integration.test_ers_sync import _lab_policy, cells
from tests.integration.test_ise_cli import _Borrowed, cli_store, env_for, ers, kinds, pki, summary, sync

pytestmark = pytest.mark.integration
__all__ = ["cli_store", "ers", "pki"]  # fixtures shared with test_ise_cli


def _ise_changes(ers: ERSServer, ids: dict[str, str]) -> None:
    """What an ISE admin does between two syncs: one of each kind of change, for every kind of object."""
    ers.state.objects["sgt"][ids["lab"]]["description"] = "Lab hosts, building 2"  # SGT updated
    cameras = ers.state.add("sgt", {"name": "Cameras", "value": 42, "description": ""})  # SGT added
    ers.state.objects["sgacl"][ids["web"]]["aclcontent"] = "permit tcp dst eq 443\npermit tcp dst eq 8443"
    ssh = ers.state.add("sgacl", {"name": "SSH", "aclcontent": "permit tcp dst eq 22", "ipVersion": "IPV4",
                                  "description": ""})  # fmt: skip
    del ers.state.objects["egressmatrixcell"][ids["cell"]]  # Lab -> Printers removed, then Printers itself
    del ers.state.objects["sgt"][ids["printers"]]
    cell = {"sourceSgtId": ids["lab"], "destinationSgtId": cameras, "sgacls": [ssh], "matrixCellStatus": "ENABLED",
            "defaultRule": "DENY_IP", "description": ""}  # fmt: skip
    ers.state.add("egressmatrixcell", cell)  # Lab -> Cameras added


def test_summary_counts_every_kind_added_updated_unchanged_removed(
    ers: ERSServer, pki: Pki, cli_store: FalkorDBStore
) -> None:
    ids = _lab_policy(ers)
    env = env_for(ers, pki)
    summary(sync(env))
    _ise_changes(ers, ids)
    r = sync(env)
    out = summary(r)
    assert (out["sgts"], out["sgacls"], out["egress_cells"]) == (
        kinds(added=1, updated=1, unchanged=16, removed=1),  # Cameras; Lab; ISE's 16; Printers
        kinds(added=1, updated=1, unchanged=4, removed=0),  # SSH; Web; ISE's 4 defaults
        kinds(added=1, updated=0, unchanged=1, removed=1),  # Lab -> Cameras; ANY-ANY; Lab -> Printers
    )
    assert (out["removed_sgt_nodes"], out["kept_deleted_sgts"]) == (1, 0)  # nothing carried Printers
    assert "SGTs: 1 added, 1 updated, 16 unchanged, 1 removed" in r.stderr
    assert "SGACLs: 1 added, 1 updated, 4 unchanged, 0 removed" in r.stderr
    assert "egress matrix cells: 1 added, 0 updated, 1 unchanged, 1 removed" in r.stderr
    assert cells(cli_store) == {(65535, 65535, ("Permit IP",)), (40, 42, ("SSH",))}
    again = summary(sync(env))  # nothing changed in ISE: everything unchanged, nothing removed
    assert (again["sgts"], again["sgacls"], again["egress_cells"]) == (
        kinds(unchanged=18),
        kinds(unchanged=6),
        kinds(unchanged=2),
    )


def full_graph(store: FalkorDBStore) -> tuple[Any, ...]:
    """Every ISE fact in the graph, without the times and sync ids a second run necessarily changes."""
    sgts = store._query(
        "MATCH (s:SGT) RETURN s.value AS v, s.name AS n, s.description AS d, s.ise_id AS i, s.name_source AS ns, "
        "s.ise_deleted_at IS NULL AS live ORDER BY v", {}, name="s",
    )  # fmt: skip
    acls = store._query(
        "MATCH (x:Sgacl) RETURN x.name AS n, x.aces AS a, x.ise_id AS i, x.ip_version AS v, x.description AS d "
        "ORDER BY n", {}, name="x",
    )  # fmt: skip
    matrix = store._query(
        "MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT) RETURN a.value AS a, b.value AS b, e.sgacls AS s, "
        "e.default_rule AS r, e.status AS st, e.ise_id AS i, e.source AS src ORDER BY a, b", {}, name="e",
    )  # fmt: skip
    return [dict(r) for r in sgts], [dict(r) for r in acls], [dict(r) for r in matrix]


class _FailingStore(_Borrowed):
    """The borrowed store, but its ``fail_at``-th call (reads and writes counted) raises like a store that went
    away; with ``after_commit`` that call's write is made first (the store died before it confirmed)."""

    def __init__(self, store: FalkorDBStore, fail_at: int, *, after_commit: bool = False) -> None:
        super().__init__(store)
        self.fail_at, self.after_commit, self.calls = fail_at, after_commit, 0

    def _tick(self, statement: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise StoreError(f"FalkorDB at /tmp/x.sock: connection lost while running {statement!r}")

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        self._tick(statement)
        return self._store.read(statement, params)

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        if self.after_commit:
            rows = self._store.write(statement, params)
            self._tick(statement)
            return rows
        self._tick(statement)
        return self._store.write(statement, params)


@pytest.mark.parametrize(("fail_at", "after_commit"), [(1, False), (2, False), (3, False), (4, False), (4, True)])
def test_a_store_failure_mid_sync_changes_nothing_says_so_and_a_rerun_converges(
    ers: ERSServer, pki: Pki, store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch, fail_at: int, after_commit: bool
) -> None:
    """The sync is 3 reads (what the graph holds from ISE) and 1 write; whichever call fails, the graph is the
    previous policy (or, when the store died after committing, all of the new one), never a mix, and the next run
    gives exactly the graph a run without failure gives."""
    reference = store.with_graph(f"{store.graph_name}_ref")
    target: dict[str, Any] = {}
    monkeypatch.setattr("clarion.store.factory.open_store", lambda settings: target["store"])
    env = env_for(ers, pki)
    ids = _lab_policy(ers)
    for s in (store, reference):
        target["store"] = _Borrowed(s)
        summary(sync(env))
    before = full_graph(store)
    _ise_changes(ers, ids)
    try:
        target["store"] = _Borrowed(reference)
        summary(sync(env))  # the clean run
        clean = full_graph(reference)
        assert clean != before

        target["store"] = failing = _FailingStore(store, fail_at, after_commit=after_commit)
        r = sync(env)
        assert failing.calls == fail_at
        assert r.exit_code == 1, r.output
        assert "the graph store failed while applying it: FalkorDB at /tmp/x.sock: connection lost" in r.stderr
        assert "never a mix" in r.stderr
        assert "Run `clarion ise sync` again once the store is back: it converges" in r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == {
            "host": f"https://127.0.0.1:{ers.port}", "ok": False, "failed": "store", "partial": False,
            "read": {"sgts": 18, "sgacls": 6, "egress_cells": 2},
        }  # fmt: skip
        assert full_graph(store) == (clean if after_commit else before)

        target["store"] = _Borrowed(store)
        out = summary(sync(env))  # the store is back
        assert full_graph(store) == clean
        assert out["sgacls"] == (kinds(unchanged=6) if after_commit else kinds(added=1, updated=1, unchanged=4))
    finally:
        reference.drop_graph()
