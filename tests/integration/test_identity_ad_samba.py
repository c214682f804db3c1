"""A real Samba AD DC → ``sync_and_merge`` → the graph: nested groups, a membership removed, a failed sync."""

from __future__ import annotations

import json
from pathlib import Path

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
from tests.integration.samba_ad import LDAPS_URL, SambaDC, add_group, add_user, samba_dc

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
