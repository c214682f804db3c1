"""A real Samba AD DC → ``sync_and_merge`` → the graph: nested groups, removals, deletions, failed syncs."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE
from typer.testing import CliRunner

from clarion.cli import app
from clarion.identity import merge_sessions
from clarion.identity.directory import sync_and_merge
from clarion.sources.ad import ADConfig, ADError
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from tests.helpers import T0
from tests.integration.samba_ad import ADMIN_PASSWORD, LDAPS_URL, SambaDC, add_group, add_user, samba_dc

pytestmark = pytest.mark.integration
__all__ = ["samba_dc"]  # the session fixture, imported so pytest sees it here

PASSWORD = "Id-Svc!2024-pass"


@pytest.fixture(scope="module")
def dc(samba_dc: SambaDC) -> SambaDC:
    """The session's DC, shared with the other AD modules by ``tests.integration.samba_ad``."""
    return samba_dc


@pytest.fixture(scope="module")
def seeded(dc: SambaDC) -> dict[str, str]:
    """dave ∈ IdTeam ⊂ IdEng; erin ∈ IdEng (names unique to this module: the DC is shared by the session)."""
    conn = dc.admin()
    dns = {
        "svc": add_user(conn, "id-svc", password=PASSWORD),
        "dave": add_user(conn, "dave", display_name="Dave Doe"),
        "erin": add_user(conn, "erin", display_name="Erin Eve"),
    }
    dns["eng"] = add_group(conn, "IdEng", [dns["erin"]])
    dns["team"] = add_group(conn, "IdTeam", [dns["dave"]])
    conn.modify(dns["eng"], {"member": [(MODIFY_ADD, [dns["team"]])]})
    conn.unbind()
    return dns


def config(password: str = PASSWORD) -> ADConfig:
    return ADConfig(url=LDAPS_URL, bind_user="id-svc@corp.local", password=password, verify_tls=False)


def groups_of(store: FalkorDBStore, user: str) -> dict[str, int]:
    rows = store.read("query/identity_user_groups", {"usernames": [user]})
    return {r["group_name"]: int(r["depth"]) for r in rows}


def test_samba_directory_lands_in_the_graph_and_cleanup_follows_ad(
    store: FalkorDBStore, dc: SambaDC, seeded: dict[str, str]
) -> None:
    merge_sessions(store, [Session(mac="02:00:00:00:10:01", username="CORP\\dave", timestamp_ms=T0)])
    result = sync_and_merge(store, config())
    assert result.full
    assert groups_of(store, "dave") == {"IdTeam": 1, "Domain Users": 1, "IdEng": 2, "Users": 2}
    assert groups_of(store, "erin") == {"IdEng": 1, "Domain Users": 1, "Users": 2}
    dave = store._query("MATCH (u:User {username: 'dave'}) RETURN u", {}, name="u")[0]["u"]
    assert (dave["display_name"], dave["upn"], dave["source"]) == ("Dave Doe", "dave@corp.local", "ise")
    assert store._query("MATCH (:Device)-[:ASSIGNED_TO]->(u:User {username: 'dave'}) RETURN u", {}, name="a")

    # a wrong password fails the sync: nothing changes
    before = groups_of(store, "dave")
    with pytest.raises(ADError, match="bind"):
        sync_and_merge(store, config(password="wrong-password-1"))
    assert groups_of(store, "dave") == before

    # dave leaves IdTeam in AD: the next full sync removes the membership and what came through it
    conn = dc.admin()
    conn.modify(seeded["team"], {"member": [(MODIFY_DELETE, [seeded["dave"]])]})
    conn.unbind()
    sync_and_merge(store, config())
    assert groups_of(store, "dave") == {"Domain Users": 1, "Users": 2}
    assert groups_of(store, "erin")["IdEng"] == 1


def test_clarion_ad_sync_command_merges_into_the_local_store(
    dc: SambaDC, seeded: dict[str, str], tmp_path: Path
) -> None:
    env = {
        "CLARION_DATA_DIR": str(tmp_path / "data"), "CLARION_GRAPH_NAME": "adcli", "CLARION_AD_URL": LDAPS_URL,
        "CLARION_AD_BIND_DN": "id-svc@corp.local", "CLARION_AD_PASSWORD": PASSWORD, "CLARION_AD_VERIFY_TLS": "false",
    }  # fmt: skip
    r = CliRunner().invoke(app, ["ad", "sync"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["full"] is True
    store = FalkorDBStore.embedded(tmp_path / "data", graph="adcli")  # the command stopped its store: reopen it
    try:
        assert groups_of(store, "erin") == {"IdEng": 1, "Domain Users": 1, "Users": 2}
    finally:
        store.close()
    bad = CliRunner().invoke(app, ["ad", "sync"], env={**env, "CLARION_AD_PASSWORD": "wrong-password-1"})
    assert bad.exit_code == 1
    assert "AD sync failed, nothing was changed" in bad.output


def admin_config() -> ADConfig:
    """Administrator may read CN=Deleted Objects (a service account needs that delegated)."""
    return ADConfig(url=LDAPS_URL, bind_user="Administrator@corp.local", password=ADMIN_PASSWORD, verify_tls=False)


def ad_user(store: FalkorDBStore, name: str) -> dict[str, Any] | None:
    rows = store._query("MATCH (u:User {username: $n}) RETURN u", {"n": name}, name="u")
    return dict(rows[0]["u"]) if rows else None


def group_names(store: FalkorDBStore) -> set[str]:
    return {r["n"] for r in store._query("MATCH (g:ADGroup) RETURN g.name AS n", {}, name="g")}


def test_incremental_sync_applies_deletions_and_replaced_memberships(store: FalkorDBStore, dc: SambaDC) -> None:
    conn = dc.admin()
    dns = {n: add_user(conn, n) for n in ("frank", "gina", "hank", "ivan")}
    team = add_group(conn, "DelTeam", [dns["frank"], dns["gina"], dns["ivan"]])
    parent = add_group(conn, "DelParent", [team])
    gone = add_group(conn, "DelGone", [dns["hank"]])
    conn.unbind()
    merge_sessions(store, [Session(mac="02:00:00:00:10:02", username="gina", timestamp_ms=T0)])
    first = sync_and_merge(store, admin_config())
    assert first.full
    assert first.mark is not None
    assert groups_of(store, "frank") == {"DelTeam": 1, "DelParent": 2, "Domain Users": 1, "Users": 2}
    assert groups_of(store, "hank") == {"DelGone": 1, "Domain Users": 1, "Users": 2}

    conn = dc.admin()
    conn.delete(dns["gina"])  # a user with a session
    conn.delete(gone)  # a group
    conn.modify(team, {"member": [(MODIFY_DELETE, [dns["frank"]])]})  # a member removed
    conn.modify(parent, {"member": [(MODIFY_DELETE, [team])]})  # nesting removed: ivan loses DelParent
    conn.unbind()
    delta = sync_and_merge(store, admin_config(), resume_from=first.mark)

    assert (delta.full, delta.full_reason, delta.deleted, delta.replaced_groups) == (False, None, 2, 2)
    assert delta.mark is not None
    assert delta.mark.highest_usn > first.mark.highest_usn
    assert groups_of(store, "frank") == {"Domain Users": 1, "Users": 2}
    assert groups_of(store, "ivan") == {"DelTeam": 1, "Domain Users": 1, "Users": 2}
    assert groups_of(store, "hank") == {"Domain Users": 1, "Users": 2}
    assert "DelGone" not in group_names(store)
    assert {"DelTeam", "DelParent"} <= group_names(store)
    gina = ad_user(store, "gina")  # her session keeps the node; her AD facts are gone
    assert gina is not None
    assert (gina.get("sid"), gina["ad_removed"], groups_of(store, "gina")) == (None, True, {})

    again = sync_and_merge(store, admin_config(), resume_from=delta.mark)
    assert (again.full, again.deleted, again.users, again.groups) == (False, 0, 0, 0)


def test_incremental_falls_back_to_full_when_the_mark_cannot_be_trusted(
    store: FalkorDBStore, dc: SambaDC, seeded: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    first = sync_and_merge(store, admin_config())
    assert first.mark is not None
    now_ms = int(time.time() * 1000)
    cases = {
        "invocationId changed": replace(first.mark, invocation_id="00000000-0000-0000-0000-000000000000"),
        "beyond the tombstone lifetime of 180 days": replace(first.mark, taken_at_ms=now_ms - 180 * 86_400_000),
        "base DN changed": replace(first.mark, base_dn="OU=Elsewhere,DC=corp,DC=local"),
    }
    for reason, mark in cases.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="clarion.sources.ad"):
            result = sync_and_merge(store, admin_config(), resume_from=mark)
        assert result.full, reason
        assert result.full_reason is not None
        assert reason in result.full_reason
        assert any("FULL sync instead of an incremental" in r.getMessage() and reason in r.getMessage()
                   for r in caplog.records)  # fmt: skip
        assert groups_of(store, "erin") == {"IdEng": 1, "Domain Users": 1, "Users": 2}
    # an ordinary service account cannot read tombstones: incremental would miss deletions, so it runs full
    result = sync_and_merge(store, config(), resume_from=first.mark)
    assert result.full
    assert result.full_reason is not None
    assert "cannot read CN=Deleted Objects" in result.full_reason


def test_clarion_ad_sync_incremental_resumes_from_the_stored_mark(dc: SambaDC, tmp_path: Path) -> None:
    conn = dc.admin()
    kim = add_user(conn, "kim-cli")
    conn.unbind()
    env = {
        "CLARION_DATA_DIR": str(tmp_path / "data"), "CLARION_GRAPH_NAME": "adinc", "CLARION_AD_URL": LDAPS_URL,
        "CLARION_AD_BIND_DN": "Administrator@corp.local", "CLARION_AD_PASSWORD": ADMIN_PASSWORD,
        "CLARION_AD_VERIFY_TLS": "false",
    }  # fmt: skip
    first = CliRunner().invoke(app, ["ad", "sync", "--incremental"], env=env)
    assert first.exit_code == 0, first.output
    assert "no AD sync mark at" in first.output
    mark_path = tmp_path / "data" / "ad-sync-mark-adinc.json"
    mark = json.loads(mark_path.read_text())
    assert json.loads(first.output.strip().splitlines()[-1])["mark"] == mark
    conn = dc.admin()
    conn.delete(kim)
    conn.unbind()
    second = CliRunner().invoke(app, ["ad", "sync", "--incremental"], env=env)
    assert second.exit_code == 0, second.output
    out = json.loads(second.output.strip().splitlines()[-1])
    assert (out["full"], out["deleted"], out["full_reason"]) == (False, 1, None)
    assert json.loads(mark_path.read_text())["highest_usn"] > mark["highest_usn"]
    store = FalkorDBStore.embedded(tmp_path / "data", graph="adinc")
    try:
        assert store._query("MATCH (u:User {username: 'kim-cli'}) RETURN u", {}, name="u") == []
    finally:
        store.close()
    mark_path.write_text('{"highest_usn": "12"}')
    bad = CliRunner().invoke(app, ["ad", "sync", "--incremental"], env=env)
    assert bad.exit_code == 2
    assert "invocation_id" not in bad.output  # the first bad field is named, with what is accepted
    assert "highest_usn must be an integer >= 0, got '12'" in bad.output
    assert "delete the file to start over with a full sync" in bad.output
