"""AD sync against a real Samba AD DC: the exact users, SIDs, nesting, computers, and incremental changes."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import replace

import pytest
from ldap3 import MODIFY_DELETE, MODIFY_REPLACE

from clarion.sources.ad import (
    ADClient,
    ADConfig,
    ADError,
    ADSync,
    InChainStrategy,
    TokenGroupsStrategy,
    sync_directory,
    sync_directory_async,
    transitive_groups,
)
from clarion.sources.model import DirectorySnapshot
from tests.integration.samba_ad import (
    BASE_DN,
    HOST,
    LDAPS_URL,
    STARTTLS_URL,
    SambaDC,
    add_computer,
    add_group,
    add_members,
    add_user,
    samba_dc,
)

pytestmark = pytest.mark.integration
__all__ = ["samba_dc"]  # the session fixture, imported so pytest sees it here

SVC_PASSWORD = "Svc-Clarion!2024"
BUILTIN_USERS = "S-1-5-32-545"


def decode_sid(raw: bytes) -> str:
    """An independent objectSid decoder (MS-DTYP 2.4.2.2) to check the client's formatting against."""
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<" + "I" * count, raw[8 : 8 + 4 * count])
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


@pytest.fixture(scope="module")
def directory(samba_dc: SambaDC) -> dict[str, str]:
    """Seed: svc account, alice, bob, carol (disabled), Team1 ⊂ Eng, a group with filter metacharacters, PC1."""
    conn = samba_dc.admin()
    dns = {
        "svc": add_user(conn, "svc-clarion", password=SVC_PASSWORD),
        "alice": add_user(conn, "alice", mail="alice@corp.local", display_name="Alice Liddell"),
        "bob": add_user(conn, "bob", display_name="Bob"),
        "carol": add_user(conn, "carol", disabled=True),
    }
    dns["eng"] = add_group(conn, "Eng", [dns["alice"]])
    dns["team1"] = add_group(conn, "Team1", [dns["bob"]])
    add_members(conn, dns["eng"], [dns["team1"]])
    dns["odd"] = add_group(conn, "R&D (lab)*", [dns["carol"]], sam="RnD-lab")
    dns["ops"] = add_group(conn, "Ops")
    dns["pc1"] = add_computer(conn, "PC1", "pc1.corp.local", "Windows 11 Enterprise")
    conn.unbind()
    return dns


def svc_config(url: str = LDAPS_URL, **kw: object) -> ADConfig:
    base: dict[str, object] = {
        "url": url,
        "bind_user": "svc-clarion@corp.local",
        "password": SVC_PASSWORD,
        "verify_tls": False,
        "start_tls": url.startswith("ldap://"),
    }
    base.update(kw)
    return ADConfig(**base)  # type: ignore[arg-type]


def raw_sids(samba_dc: SambaDC, names: list[str]) -> dict[str, str]:
    """sAMAccountName -> SID read as raw bytes with a schema-less connection and decoded here."""
    conn = samba_dc.admin()
    ors = "".join(f"(sAMAccountName={n})" for n in names)
    conn.search(BASE_DN, f"(|{ors})", attributes=["sAMAccountName", "objectSid"])
    out = {
        e["attributes"]["sAMAccountName"][0]: decode_sid(e["raw_attributes"]["objectSid"][0])
        for e in conn.response
        if e["type"] == "searchResEntry"
    }
    conn.unbind()
    return out


def raw_names(samba_dc: SambaDC, search_filter: str) -> set[str]:
    conn = samba_dc.admin()
    conn.search(BASE_DN, search_filter, attributes=["sAMAccountName"], paged_size=1000)
    out = {e["attributes"]["sAMAccountName"][0] for e in conn.response if e["type"] == "searchResEntry"}
    conn.unbind()
    return out


@pytest.fixture(scope="module")
def full(directory: dict[str, str]) -> DirectorySnapshot:
    return sync_directory(svc_config())


def test_full_sync_reads_exact_users_with_sids_and_attributes(
    samba_dc: SambaDC, directory: dict[str, str], full: DirectorySnapshot
) -> None:
    users = {u.username: u for u in full.users}
    # exactly what an independent raw query sees (other test modules may share this DC), ours included
    assert set(users) == raw_names(samba_dc, "(&(objectCategory=person)(objectClass=user))")
    assert {"Administrator", "Guest", "krbtgt", "svc-clarion", "alice", "bob", "carol"} <= set(users)
    sids = raw_sids(samba_dc, ["alice", "bob", "Eng", "Team1", "Domain Users"])
    domain_users = sids["Domain Users"]
    assert domain_users.endswith("-513")
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    assert alice.sid == sids["alice"]
    assert alice.dn == directory["alice"]
    assert (alice.upn, alice.mail, alice.display_name, alice.enabled) == (
        "alice@corp.local",
        "alice@corp.local",
        "Alice Liddell",
        True,
    )
    # direct groups only, primary group (Domain Users, via primaryGroupID) added explicitly
    assert set(alice.groups) == {sids["Eng"], domain_users}
    assert set(bob.groups) == {sids["Team1"], domain_users}
    assert carol.enabled is False
    assert users["Guest"].enabled is False
    assert alice.usn_changed > 0
    assert full.since_usn is None
    assert full.highest_usn >= max(u.usn_changed for u in full.users)


def test_full_sync_reads_groups_with_nesting_and_computers(full: DirectorySnapshot, samba_dc: SambaDC) -> None:
    groups = {g.name: g for g in full.groups}
    sids = raw_sids(samba_dc, ["Eng", "Team1"])
    assert groups["Team1"].member_of == (sids["Eng"],)
    assert groups["Eng"].member_of == ()
    assert groups["Domain Users"].member_of == (BUILTIN_USERS,)
    assert groups["RnD-lab"].dn == "CN=R&D (lab)*,CN=Users,DC=corp,DC=local"
    computers = {c.name: c for c in full.computers}
    assert {f"{name}$" for name in computers} == raw_names(samba_dc, "(objectCategory=computer)")
    assert {"DC1", "PC1"} <= set(computers)
    assert (computers["PC1"].dns_host_name, computers["PC1"].operating_system) == (
        "pc1.corp.local",
        "Windows 11 Enterprise",
    )
    assert computers["DC1"].dns_host_name == "dc1.corp.local"


def test_transitive_groups_client_bfs_matches_token_groups_and_in_chain(
    full: DirectorySnapshot, samba_dc: SambaDC
) -> None:
    sids = raw_sids(samba_dc, ["alice", "bob", "Eng", "Team1", "Domain Users"])
    bfs = transitive_groups(full)
    assert bfs[sids["bob"]] == {sids["Team1"], sids["Eng"], sids["Domain Users"], BUILTIN_USERS}
    assert bfs[sids["alice"]] == {sids["Eng"], sids["Domain Users"], BUILTIN_USERS}
    subset = replace(full, users=[u for u in full.users if u.username in ("alice", "bob", "carol")])
    with ADClient(svc_config()) as client:
        tokens = TokenGroupsStrategy(client).resolve(subset)
        chain = InChainStrategy(client).resolve(subset)
    for user in subset.users:
        assert tokens[user.sid] == bfs[user.sid], user.username
        assert chain[user.sid] == bfs[user.sid], user.username


def test_starttls_on_389_gives_the_same_snapshot(full: DirectorySnapshot) -> None:
    again = sync_directory(svc_config(STARTTLS_URL))
    assert sorted(u.sid for u in again.users) == sorted(u.sid for u in full.users)
    assert sorted((g.sid, g.member_of) for g in again.groups) == sorted((g.sid, g.member_of) for g in full.groups)


def test_async_wrapper_and_small_pages_return_everything(full: DirectorySnapshot) -> None:
    import asyncio

    snap = asyncio.run(sync_directory_async(svc_config(page_size=2)))
    assert sorted(u.sid for u in snap.users) == sorted(u.sid for u in full.users)
    assert len(snap.groups) == len(full.groups)


def test_incremental_sync_sees_exactly_the_changes(samba_dc: SambaDC, directory: dict[str, str]) -> None:
    sync = ADSync(svc_config())
    base = sync.sync()
    nothing = sync.sync_changes(base)
    assert (nothing.users, nothing.groups, nothing.computers) == ([], [], [])
    conn = samba_dc.admin()
    daisy = add_user(conn, "daisy")
    conn.modify(directory["alice"], {"mail": [(MODIFY_REPLACE, ["alice@example.org"])]})
    add_members(conn, directory["ops"], [directory["bob"]])  # bob's own uSNChanged does not move
    conn.modify(directory["eng"], {"member": [(MODIFY_DELETE, [directory["alice"]])]})
    add_computer(conn, "PC2", "pc2.corp.local", None)
    conn.unbind()
    delta = sync.sync_changes(base)
    assert delta.since_usn == base.highest_usn + 1
    users = {u.username: u for u in delta.users}
    assert set(users) == {"daisy", "alice", "bob"}
    assert {g.name for g in delta.groups} == {"Ops", "Eng"}
    assert [c.name for c in delta.computers] == ["PC2"]
    groups = {g.name: g.sid for g in base.groups}
    assert groups["Ops"] in users["bob"].groups
    assert groups["Eng"] not in users["alice"].groups
    assert users["alice"].mail == "alice@example.org"
    assert users["daisy"].dn == daisy
    # a fresh process without remembered membership still sees the change on bob's side (current members)
    fresh = sync_directory(svc_config(), since_usn=base.highest_usn + 1)
    assert {"daisy", "alice", "bob"} <= {u.username for u in fresh.users}
    # deletions are tombstones: visible with Show Deleted to an account that may read Deleted Objects
    admin = samba_dc.admin()
    admin.delete(daisy)
    admin.unbind()
    with ADClient(replace(svc_config(), bind_user="Administrator@corp.local", password="Passw0rd!2024")) as client:
        gone = client.deleted_since(base.highest_usn + 1)
    assert [(d.sid, d.kind) for d in gone] == [(users["daisy"].sid, "user")]


def test_membership_lookup_escapes_dn_metacharacters(samba_dc: SambaDC, directory: dict[str, str]) -> None:
    sync = ADSync(svc_config())
    base = sync.sync()
    conn = samba_dc.admin()
    conn.modify(directory["carol"], {"description": [(MODIFY_REPLACE, ["changed"])]})
    conn.unbind()
    # no remembered state: carol's memberOf 'CN=R&D (lab)*,...' is resolved by an escaped DN lookup
    delta = sync_directory(svc_config(), since_usn=base.highest_usn + 1)
    carol = next(u for u in delta.users if u.username == "carol")
    odd = next(g for g in base.groups if g.name == "RnD-lab")
    assert odd.sid in carol.groups


def test_wrong_password_raises_naming_the_server_not_the_password(directory: dict[str, str]) -> None:
    with pytest.raises(ADError) as err:
        sync_directory(svc_config(password="Wrong-Secret-42"))
    assert LDAPS_URL in str(err.value)
    assert "invalidCredentials" in str(err.value)
    assert "Wrong-Secret-42" not in str(err.value)


def test_unreachable_server_raises(directory: dict[str, str]) -> None:
    with pytest.raises(ADError, match=r"ldaps://127\.0\.0\.1:1: connect/bind failed"):
        sync_directory(svc_config("ldaps://127.0.0.1:1", timeout_s=2))


class CuttingProxy:
    """TCP proxy to the DC that drops both sides after ``limit`` bytes from the server: a DC dying mid-sync."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.server_bytes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, 636))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(4096):
                if from_server:
                    self.server_bytes += len(data)
                    if self.limit is not None and self.server_bytes >= self.limit:
                        break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_connection_lost_mid_sync_raises_and_keeps_previous_state(
    directory: dict[str, str], full: DirectorySnapshot
) -> None:
    measure = CuttingProxy(limit=None)
    ADSync(svc_config(f"ldaps://127.0.0.1:{measure.port}", page_size=2)).sync()
    measure.close()
    assert measure.server_bytes > 10_000
    # the same sync again, but the DC 'dies' 3 kB before the end: during the last paged searches
    proxy = CuttingProxy(limit=measure.server_bytes - 3_000)
    try:
        sync = ADSync(svc_config(f"ldaps://127.0.0.1:{proxy.port}", page_size=2, timeout_s=5))
        with pytest.raises(ADError, match=rf"AD ldaps://127\.0\.0\.1:{proxy.port}: search .* failed"):
            sync.sync()
    finally:
        proxy.close()
    assert sync._members is None  # nothing remembered from the half-read directory


def test_bad_config_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="plain ldap://"):
        ADConfig(url="ldap://dc:389", bind_user="x", password="y")
    with pytest.raises(ValueError, match="ldaps://host"):
        ADConfig(url="http://dc", bind_user="x", password="y")
    with pytest.raises(ValueError, match="page_size"):
        ADConfig(url="ldaps://dc", bind_user="x", password="y", page_size=5000)


def test_tls_is_verified_by_default(directory: dict[str, str]) -> None:
    # Samba's auto-generated certificate is self-signed: the default verification must refuse it
    with pytest.raises(ADError, match=r"connect/bind failed: .*CERTIFICATE_VERIFY_FAILED"):
        sync_directory(svc_config(verify_tls=True, timeout_s=5))
