"""AD snapshots and TrustSec records merged on a real FalkorDB: cleanup only after a sync's own success."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clarion.cli import app
from clarion.identity import merge_directory, merge_egress_cells, merge_security_groups, merge_sessions, merge_sgacls
from clarion.identity.directory import sync_and_merge
from clarion.identity.trustsec import apply_trustsec_deletes
from clarion.sources.ad import ADConfig, ADError
from clarion.sources.model import (
    ADComputer,
    ADGroup,
    ADUser,
    DeletedObject,
    DirectorySnapshot,
    EgressCell,
    GroupMembers,
    SecurityGroup,
    Session,
    Sgacl,
)
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import Row, StoreError
from tests.helpers import T0

pytestmark = pytest.mark.integration

DOM = "S-1-5-21-9-8-7"
USERS, STAFF, ENG, TEAM = f"{DOM}-513", f"{DOM}-1100", f"{DOM}-1101", f"{DOM}-1102"


def snapshot() -> DirectorySnapshot:
    return DirectorySnapshot(
        groups=[
            ADGroup(sid=USERS, name="Domain Users", dn="CN=Domain Users,DC=corp"),
            ADGroup(sid=STAFF, name="Staff", dn="CN=Staff,DC=corp"),
            ADGroup(sid=ENG, name="Engineering", dn="CN=Engineering,DC=corp", member_of=(STAFF,)),
            ADGroup(sid=TEAM, name="Team-A", dn="CN=Team-A,DC=corp", member_of=(ENG,)),
        ],
        users=[
            ADUser(sid=f"{DOM}-2001", username="alice", dn="CN=alice,DC=corp", groups=(TEAM, USERS)),
            ADUser(sid=f"{DOM}-2002", username="bob", dn="CN=bob,DC=corp", groups=(ENG, USERS)),
        ],
        computers=[ADComputer(sid=f"{DOM}-3001", name="PC01", dns_host_name="pc01.corp", operating_system="Win 11")],
        highest_usn=10,
    )


def memberships(store: FalkorDBStore) -> set[tuple[str, str]]:
    rows = store._query(
        "MATCH (a)-[:MEMBER_OF]->(g:ADGroup) RETURN coalesce(a.username, a.name) AS a, g.name AS g", {}, name="m"
    )
    return {(r["a"], r["g"]) for r in rows}


def groups_of(store: FalkorDBStore, user: str) -> dict[str, int]:
    rows = store.read("query/identity_user_groups", {"usernames": [user]})
    return {r["group_name"]: int(r["depth"]) for r in rows}


def test_full_sync_builds_nesting_and_the_next_full_sync_removes_what_left(store: FalkorDBStore) -> None:
    first = merge_directory(store, snapshot(), now_ms=T0)
    assert (first.users, first.groups, first.memberships, first.nesting) == (2, 4, 4, 2)
    assert groups_of(store, "alice") == {"Team-A": 1, "Domain Users": 1, "Engineering": 2, "Staff": 3}
    assert groups_of(store, "bob") == {"Engineering": 1, "Domain Users": 1, "Staff": 2}

    # bob left Engineering; Team-A was deleted (alice with it); Staff is now empty of sub-groups
    snap = snapshot()
    snap.groups = [g for g in snap.groups if g.sid != TEAM]
    snap.users = [replace(snap.users[0], groups=(USERS,)), replace(snap.users[1], groups=(USERS,))]
    merge_directory(store, snap, now_ms=T0 + 1)
    assert memberships(store) == {("alice", "Domain Users"), ("bob", "Domain Users"), ("Engineering", "Staff")}
    assert groups_of(store, "alice") == {"Domain Users": 1}
    names = {r["n"] for r in store._query("MATCH (g:ADGroup) RETURN g.name AS n", {}, name="g")}
    assert names == {"Domain Users", "Staff", "Engineering"}


def test_user_gone_from_ad_keeps_session_history_but_loses_ad_facts(store: FalkorDBStore) -> None:
    merge_directory(store, snapshot(), now_ms=T0)
    merge_sessions(store, [Session(mac="02:00:00:00:0d:01", username="CORP\\alice", timestamp_ms=T0)])
    snap = snapshot()
    snap.users = [u for u in snap.users if u.username != "alice"]
    merge_directory(store, snap, now_ms=T0 + 1)
    alice = store._query("MATCH (u:User {username: 'alice'}) RETURN u", {}, name="u")[0]["u"]
    assert alice.get("sid") is None
    assert alice["ad_removed"] is True
    assert groups_of(store, "alice") == {}
    assert store._query("MATCH (:Device)-[:ASSIGNED_TO]->(:User {username: 'alice'}) RETURN 1 AS x", {}, name="a")
    assert not store._query("MATCH (u:User {username: 'nobody'}) RETURN u", {}, name="u")


class FailingStore:
    """Delegates to a real store but fails the n-th write, like a store that goes away mid-sync."""

    def __init__(self, inner: FalkorDBStore, fail_at: int) -> None:
        self.inner, self.fail_at, self.writes = inner, fail_at, 0
        self.dialect = inner.dialect

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self.inner.read(statement, params)

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        self.writes += 1
        if self.writes == self.fail_at:
            raise StoreError(f"FalkorDB: connection lost ({statement})")
        return self.inner.write(statement, params)


@pytest.mark.parametrize("fail_at", [2, 5])
def test_a_sync_that_fails_part_way_deletes_nothing(store: FalkorDBStore, fail_at: int) -> None:
    merge_directory(store, snapshot(), now_ms=T0)
    before = memberships(store)
    # on success this would remove every group but Domain Users; writes: 1 groups, 2 users, 3 referenced groups,
    # 4 memberships, 5 the cleanup
    only_users = DirectorySnapshot(
        groups=[snapshot().groups[0]], users=[replace(u, groups=(USERS,)) for u in snapshot().users], highest_usn=11
    )
    with pytest.raises(StoreError):
        merge_directory(FailingStore(store, fail_at=fail_at), only_users, now_ms=T0 + 1)  # type: ignore[arg-type]
    assert memberships(store) == before
    assert groups_of(store, "alice")["Staff"] == 3


def test_a_failed_ldap_sync_changes_nothing(store: FalkorDBStore) -> None:
    merge_directory(store, snapshot(), now_ms=T0)
    before = memberships(store)
    config = ADConfig(url="ldaps://127.0.0.1:1", bind_user="svc@corp", password="x", timeout_s=2)
    with pytest.raises(ADError, match=r"127\.0\.0\.1:1"):
        sync_and_merge(store, config)
    assert memberships(store) == before


def test_incremental_sync_replaces_only_the_changed_users_memberships(store: FalkorDBStore) -> None:
    merge_directory(store, snapshot(), now_ms=T0)
    changed = DirectorySnapshot(
        users=[ADUser(sid=f"{DOM}-2002", username="bob", dn="CN=bob,DC=corp", groups=(USERS,))],
        highest_usn=12, since_usn=11,
    )  # fmt: skip
    result = merge_directory(store, changed, now_ms=T0 + 1)
    assert not result.full
    assert ("bob", "Engineering") not in memberships(store)
    assert ("alice", "Team-A") in memberships(store)  # untouched by an incremental sync
    assert groups_of(store, "alice")["Staff"] == 3


def test_ad_computers_annotate_devices_that_machine_auth_named(store: FalkorDBStore) -> None:
    merge_sessions(store, [Session(mac="02:00:00:00:0d:02", username="host/PC01.corp.local", timestamp_ms=T0)])
    assert merge_directory(store, snapshot(), now_ms=T0).computers == 1
    d = store._query("MATCH (d:Device {uid: '02:00:00:00:0d:02'}) RETURN d", {}, name="d")[0]["d"]
    assert (d["hostname"], d["operating_system"], d["ad_sid"]) == ("pc01", "Win 11", f"{DOM}-3001")
    users = {r["n"] for r in store._query("MATCH (u:User) RETURN u.username AS n", {}, name="u")}
    assert users == {"alice", "bob"}  # machine authentication is a computer, never a User


def test_security_groups_name_sgts_and_a_complete_matrix_replaces_cells(store: FalkorDBStore) -> None:
    merge_sessions(store, [Session(mac="02:00:00:00:0d:03", sgt=4, sgt_name="Staff-old", timestamp_ms=T0)])
    merge_security_groups(
        store, [SecurityGroup(value=4, name="Employees"), SecurityGroup(value=11, name="Servers")], T0
    )
    sgts = {r["value"]: r["name"] for r in store.read("query/identity_sgt_names", {})}
    assert sgts == {4: "Employees", 11: "Servers"}  # ISE's name wins over a session's

    merge_sgacls(store, [Sgacl(name="Web", aces="permit tcp dst eq 443"), Sgacl(name="Old", aces="deny ip")], T0)
    merge_egress_cells(store, [EgressCell(4, 11, ("Web",)), EgressCell(11, 4, (), "DENY_IP")], T0, complete=True)
    merge_egress_cells(store, [EgressCell(4, 11, ("Web", "Old"))], T0 + 1, complete=True)
    merge_sgacls(store, [], T0 + 1, deleted=["Old"])
    rows = store._query(
        "MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT) RETURN a.value AS a, b.value AS b, e.sgacls AS acls", {}, name="e"
    )
    assert [(r["a"], r["b"], r["acls"]) for r in rows] == [(4, 11, ["Web", "Old"])]
    assert [r["n"] for r in store._query("MATCH (x:Sgacl) RETURN x.name AS n", {}, name="s")] == ["Web"]


def ad_snapshot(**changes: Any) -> DirectorySnapshot:
    """The same directory as ``snapshot()`` as the AD sync reports it (with primary groups), or a delta of it."""
    base = snapshot()
    users = [replace(u, primary_group=USERS) for u in base.users]
    fields = {"users": users, "groups": base.groups, "computers": base.computers, "highest_usn": 10}
    return DirectorySnapshot(**{**fields, **changes})


def test_incremental_member_lists_replace_edges_but_keep_primary_group_ones(store: FalkorDBStore) -> None:
    merge_directory(store, ad_snapshot(), now_ms=T0)
    delta = ad_snapshot(
        users=[], groups=[], computers=[], highest_usn=12, since_usn=11,
        members=[GroupMembers(USERS), GroupMembers(ENG, users=(), groups=(TEAM,)), GroupMembers(STAFF)],
    )  # fmt: skip
    result = merge_directory(store, delta, now_ms=T0 + 1)
    assert (result.full, result.replaced_groups, result.deleted) == (False, 3, 0)
    # bob left Engineering, Engineering left Staff; Domain Users lists nobody but is everyone's primary group
    assert memberships(store) == {
        ("alice", "Team-A"), ("alice", "Domain Users"), ("bob", "Domain Users"), ("Team-A", "Engineering"),
    }  # fmt: skip
    assert groups_of(store, "alice") == {"Team-A": 1, "Domain Users": 1, "Engineering": 2}  # Staff no longer


def test_incremental_deletions_remove_users_groups_and_computer_facts(store: FalkorDBStore) -> None:
    merge_sessions(store, [Session(mac="02:00:00:00:0d:04", username="bob", timestamp_ms=T0)])
    merge_sessions(store, [Session(mac="02:00:00:00:0d:05", username="host/PC01", timestamp_ms=T0)])
    merge_directory(store, ad_snapshot(), now_ms=T0)
    gone = [
        DeletedObject(f"{DOM}-2001", "user", 11),  # alice: AD made her, nothing else refers to her
        DeletedObject(f"{DOM}-2002", "user", 12),  # bob: a session refers to him
        DeletedObject(ENG, "group", 13),
        DeletedObject(f"{DOM}-3001", "computer", 14),
    ]
    delta = ad_snapshot(users=[], groups=[], computers=[], highest_usn=14, since_usn=11, deleted=gone)
    assert merge_directory(store, delta, now_ms=T0 + 1).deleted == 4
    users = {r["n"]: r for r in store._query("MATCH (u:User) RETURN u.username AS n, u.sid AS sid, "
                                             "u.ad_removed AS removed", {}, name="u")}  # fmt: skip
    assert set(users) == {"bob"}
    assert (users["bob"]["sid"], users["bob"]["removed"]) == (None, True)
    assert groups_of(store, "bob") == {}
    assert memberships(store) == {("Team-A", "Staff")} - {("Team-A", "Staff")}
    names = {r["n"] for r in store._query("MATCH (g:ADGroup) RETURN g.name AS n", {}, name="g")}
    assert names == {"Domain Users", "Staff", "Team-A"}
    pc = store._query("MATCH (d:Device {uid: '02:00:00:00:0d:05'}) RETURN d", {}, name="d")[0]["d"]
    assert (pc.get("ad_sid"), pc.get("operating_system"), pc["hostname"]) == (None, None, "pc01")


@pytest.mark.parametrize("fail_at", [1, 3])
def test_an_incremental_sync_failing_part_way_deletes_nothing(store: FalkorDBStore, fail_at: int) -> None:
    merge_directory(store, ad_snapshot(), now_ms=T0)
    before = memberships(store)
    delta = ad_snapshot(
        users=[], groups=[snapshot().groups[1]], computers=[], highest_usn=12, since_usn=11,
        members=[GroupMembers(ENG), GroupMembers(STAFF)], deleted=[DeletedObject(TEAM, "group", 12)],
    )  # fmt: skip
    # writes: 1 the merge (Staff re-read), 2 the changed group's cleanup, 3 the member-list cleanup, 4 the deletions;
    # fail the merge or the first removing cleanup
    with pytest.raises(StoreError):
        merge_directory(FailingStore(store, fail_at=fail_at), delta, now_ms=T0 + 1)  # type: ignore[arg-type]
    assert memberships(store) == before
    assert groups_of(store, "alice")["Staff"] == 3
    # the same delta again (the mark did not advance) converges to AD's state
    merge_directory(store, delta, now_ms=T0 + 2)
    assert memberships(store) == {("alice", "Domain Users"), ("bob", "Domain Users")}


def test_an_ise_delete_event_removes_the_sgacl_and_retires_a_tagged_sgt(store: FalkorDBStore) -> None:
    merge_security_groups(store, [SecurityGroup(40, "Lab"), SecurityGroup(41, "Printers"), SecurityGroup(4, "Emp")], T0)
    merge_sgacls(store, [Sgacl(name="Web", aces="permit tcp dst eq 443")], T0)
    merge_egress_cells(store, [EgressCell(40, 41, ("Web",)), EgressCell(4, 41, ("Web",))], T0, complete=True)
    merge_sessions(store, [Session(mac="02:00:00:00:0d:06", sgt=40, timestamp_ms=T0)])
    assert apply_trustsec_deletes(store, sgt_values=[40, 41], sgacl_names=["Web"], now_ms=T0 + 5) == 3
    rows = store._query("MATCH (s:SGT) RETURN s.value AS v, s.name AS n, s.ise_deleted_at AS d", {}, name="s")
    assert {(r["v"], r["n"], r["d"]) for r in rows} == {(40, "Lab", T0 + 5), (4, "Emp", None)}
    assert store._query("MATCH ()-[e:EGRESS_POLICY]->() RETURN e", {}, name="e") == []
    assert store._query("MATCH (x:Sgacl) RETURN x", {}, name="x") == []
    assert apply_trustsec_deletes(store, now_ms=T0 + 6) == 0
    with pytest.raises(ValueError, match=r"SGT value 70000 is not a tag 0\.\.65535"):
        apply_trustsec_deletes(store, sgt_values=[70000], now_ms=T0 + 6)


def test_ad_sync_incremental_refuses_an_oversized_mark_file_before_connecting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ad-sync-mark-big.json").write_text(" " * 5000)
    env = {
        "CLARION_DATA_DIR": str(data), "CLARION_GRAPH_NAME": "big", "CLARION_AD_URL": "ldaps://127.0.0.1:1",
        "CLARION_AD_BIND_DN": "svc@corp.local", "CLARION_AD_PASSWORD": "x",
    }  # fmt: skip
    r = CliRunner().invoke(app, ["ad", "sync", "--incremental"], env=env)
    assert r.exit_code == 2
    assert "5000 bytes; a sync mark is at most 4096" in r.output
    assert "delete the file to start over with a full sync" in r.output
    both = CliRunner().invoke(app, ["ad", "sync", "--incremental", "--since-usn", "5"], env=env)
    assert both.exit_code == 2
    assert "use either --incremental" in both.output


class RecordingStore:
    """Delegates to a real store and records, per write, the statement and the length of each list parameter."""

    def __init__(self, inner: FalkorDBStore) -> None:
        self.inner, self.dialect = inner, inner.dialect
        self.writes: list[tuple[str, dict[str, int]]] = []

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        return self.inner.read(statement, params)

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        lists = {k: len(v) for k, v in (params or {}).items() if isinstance(v, list)}
        self.writes.append((statement, {k: n for k, n in lists.items() if n}))
        return self.inner.write(statement, params)


def test_every_directory_write_is_bounded_by_the_chunk_and_none_is_empty(store: FalkorDBStore) -> None:
    for n in (1, 2, 3):
        merge_sessions(store, [Session(mac=f"02:00:00:00:0e:0{n}", username=f"host/PC0{n}", timestamp_ms=T0)])
    snap = snapshot()
    snap.computers = [ADComputer(sid=f"{DOM}-300{n}", name=f"PC0{n}", dns_host_name=f"pc0{n}.corp") for n in (1, 2, 3)]
    rec = RecordingStore(store)
    result = merge_directory(rec, snap, now_ms=T0, chunk=2)  # type: ignore[arg-type]
    assert (result.groups, result.nesting, result.users, result.memberships, result.computers) == (4, 2, 2, 4, 3)
    assert rec.writes == [
        ("merge/identity_ad_groups", {"groups": 2}), ("merge/identity_ad_groups", {"groups": 2}),
        ("merge/identity_ad_groups", {"nesting": 2}),
        ("merge/identity_ad_users", {"users": 2}),
        ("merge/identity_ad_users", {"groups": 2}), ("merge/identity_ad_users", {"groups": 1}),
        ("merge/identity_ad_users", {"members": 2}), ("merge/identity_ad_users", {"members": 2}),
        ("merge/identity_ad_computers", {"computers": 2}), ("merge/identity_ad_computers", {"computers": 1}),
        ("merge/identity_ad_cleanup_full", {}),
    ]  # fmt: skip
    assert groups_of(store, "alice") == {"Team-A": 1, "Domain Users": 1, "Engineering": 2, "Staff": 3}
    oses = store._query("MATCH (d:Device) WHERE d.ad_sid IS NOT NULL RETURN count(d) AS n", {}, name="d")
    assert oses[0]["n"] == 3

    # a delta that only reports a deletion writes only the deletion
    rec.writes.clear()
    delta = DirectorySnapshot(since_usn=11, highest_usn=12, deleted=[DeletedObject(f"{DOM}-2001", "user", 12)])
    assert merge_directory(rec, delta, now_ms=T0 + 1, chunk=2).deleted == 1  # type: ignore[arg-type]
    assert rec.writes == [("merge/identity_ad_deleted", {"sids": 1})]
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        merge_directory(rec, delta, chunk=0)  # type: ignore[arg-type]


def test_any_source_reports_deletions_and_member_lists_through_the_directory_snapshot(store: FalkorDBStore) -> None:
    """Not only the AD sync: a plain DirectorySnapshot delta (another directory source) takes the same one path."""
    merge_directory(store, ad_snapshot(), now_ms=T0)
    delta = DirectorySnapshot(
        since_usn=11, highest_usn=13, members=[GroupMembers(TEAM)], deleted=[DeletedObject(STAFF, "group", 13)]
    )
    result = merge_directory(store, delta, now_ms=T0 + 1)
    assert (result.full, result.replaced_groups, result.deleted, result.mark) == (False, 1, 1, None)
    assert memberships(store) == {("alice", "Domain Users"), ("bob", "Engineering"), ("bob", "Domain Users"),
                                  ("Team-A", "Engineering")}  # fmt: skip


def test_a_complete_matrix_from_pxgrid_replaces_the_cells_in_one_write(store: FalkorDBStore) -> None:
    """One statement merges the new matrix and removes the old cells: a failure cannot leave a half-replaced one."""
    merge_egress_cells(store, [EgressCell(4, 11, ("Web",)), EgressCell(11, 4, (), "DENY_IP")], T0, complete=True)
    rec = RecordingStore(store)
    assert merge_egress_cells(rec, [EgressCell(4, 12, ("Web",))], T0 + 1, complete=True) == 1  # type: ignore[arg-type]
    assert rec.writes == [("merge/identity_egress", {"sgts": 2, "cells": 1})]
    with pytest.raises(StoreError):
        merge_egress_cells(FailingStore(store, 1), [EgressCell(5, 5, ())], T0 + 2, complete=True)  # type: ignore[arg-type]
    rows = store._query("MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT) RETURN a.value AS a, b.value AS b", {}, name="e")
    assert [(r["a"], r["b"]) for r in rows] == [(4, 12)]
    merge_egress_cells(store, [EgressCell(5, 5, ())], T0 + 3)  # not complete: the others stay
    rows = store._query("MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT) RETURN a.value AS a, b.value AS b", {}, name="e")
    assert sorted((r["a"], r["b"]) for r in rows) == [(4, 12), (5, 5)]
