"""Fast AD tier on ldap3's MOCK_SYNC with the offline AD 2012 R2 schema: value parsing, paging, incremental logic.

The mock computes nothing (no memberOf, objectCategory or tokenGroups), so fixtures write those themselves;
server-side transitive queries are covered on Samba in tests/integration/test_ad_samba.py.
"""

from __future__ import annotations

import logging
import re
import struct
import uuid
from dataclasses import replace
from typing import Any

import ldap3
import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from clarion.sources.ad import (
    ADClient,
    ADConfig,
    ADError,
    ADSync,
    transitive_groups,
)
from clarion.sources.model import ADGroup, ADUser, DeletedObject, DirectorySnapshot, GroupMembers, SyncMark

BASE = "DC=corp,DC=local"
DOMAIN = "S-1-5-21-1004336348-1177238915-682003330"
SVC = f"CN=svc,CN=Users,{BASE}"
CONFIG_NC = f"CN=Configuration,{BASE}"
NTDS = f"CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,{CONFIG_NC}"
INVOCATION = uuid.UUID("4252fcd2-8e5e-4657-8703-ca5dc2b34fb7")
DAY_MS = 86_400_000
NOW = 1_790_000_000_000


def sid_bytes(sid: str) -> bytes:
    parts = [int(p) for p in sid.split("-")[1:]]
    revision, authority, subs = parts[0], parts[1], parts[2:]
    return bytes([revision, len(subs)]) + authority.to_bytes(6, "big") + struct.pack("<" + "I" * len(subs), *subs)


class MockDirectory:
    """An ldap3 MOCK server holding an AD-shaped directory; every connection to it shares the same DIT."""

    def __init__(self) -> None:
        self.server = ldap3.Server("dc.corp.local", get_info=ldap3.OFFLINE_AD_2012_R2)
        self.conn = ldap3.Connection(self.server, user=SVC, password="pw", client_strategy=ldap3.MOCK_SYNC)
        self.usn = 1000
        self.server.info.other["highestCommittedUSN"] = [str(self.usn)]
        self.server.info.other["defaultNamingContext"] = [BASE]  # the offline info describes DC=AD2012,DC=LAB
        svc = {"userPassword": "pw", "sAMAccountName": "svc", "objectSid": sid_bytes(f"{DOMAIN}-1100")}
        self._add(SVC, "person", svc)
        assert self.conn.bind()
        # what a DC publishes for incremental sync: its invocationId, the tombstone lifetime, Deleted Objects
        self.server.info.other["dsServiceName"] = [NTDS]
        self.server.info.other["configurationNamingContext"] = [CONFIG_NC]
        self._raw(NTDS, {"objectClass": ["top", "nTDSDSA"], "invocationId": INVOCATION.bytes_le})
        dsd = f"CN=Directory Service,CN=Windows NT,CN=Services,{CONFIG_NC}"
        self._raw(dsd, {"objectClass": ["top", "nTDSService"], "tombstoneLifetime": "180"})
        self.deleted_objects = f"CN=Deleted Objects,{BASE}"
        self._raw(self.deleted_objects, {"objectClass": ["top", "container"], "isDeleted": "TRUE"})

    def _raw(self, dn: str, attrs: dict[str, Any]) -> None:
        assert self.conn.strategy.add_entry(dn, {**attrs, "distinguishedName": dn}), dn

    def _add(self, dn: str, category: str, attrs: dict[str, Any]) -> None:
        self.usn += 1
        classes = ["top", "person", "organizationalPerson", "user"] if category != "group" else ["top", "group"]
        if category == "computer":
            classes.append("computer")
        attrs = {"objectClass": classes, "objectCategory": category, "uSNChanged": self.usn, **attrs}
        attrs["distinguishedName"] = dn  # AD computes it; the mock needs it written for DN lookups
        assert self.conn.strategy.add_entry(dn, attrs), dn
        self.server.info.other["highestCommittedUSN"] = [str(self.usn)]

    def user(self, name: str, rid: int, *, member_of: tuple[str, ...] = (), uac: int = 512, **extra: Any) -> str:
        dn = f"CN={name},CN=Users,{BASE}"
        attrs = {"sAMAccountName": name, "objectSid": sid_bytes(f"{DOMAIN}-{rid}"), "primaryGroupID": 513}
        attrs |= {"userAccountControl": uac, "memberOf": list(member_of), **extra}
        self._add(dn, "person", attrs)
        return dn

    def group(self, name: str, rid: int, *, members: tuple[str, ...] = (), member_of: tuple[str, ...] = ()) -> str:
        dn = f"CN={name},CN=Users,{BASE}"
        attrs = {"sAMAccountName": name, "objectSid": sid_bytes(f"{DOMAIN}-{rid}"), "member": list(members)}
        self._add(dn, "group", attrs | {"memberOf": list(member_of)})
        return dn

    def computer(self, name: str, rid: int, dns: str) -> None:
        attrs = {"sAMAccountName": f"{name}$", "objectSid": sid_bytes(f"{DOMAIN}-{rid}"), "dNSHostName": dns}
        self._add(f"CN={name},CN=Computers,{BASE}", "computer", attrs)

    def delete(self, dn: str) -> None:
        """What AD does: the object becomes a tombstone in Deleted Objects (no objectCategory, a new USN) and
        leaves every group's ``member``, without those groups' uSNChanged moving (as Samba shows)."""
        entry = self.server.dit[dn]
        self.usn += 1
        name = dn.split(",", 1)[0].removeprefix("CN=")
        tomb = f"CN={name} DEL:{uuid.uuid4()},{self.deleted_objects}"
        classes = [
            v.decode() for v in entry["objectClass"] if v.decode() in ("top", "person", "user", "group", "computer")
        ]
        keep = {"objectClass": classes, "objectSid": entry["objectSid"][0], "objectGUID": uuid.uuid4().bytes_le}
        self._raw(tomb, {**keep, "isDeleted": "TRUE", "uSNChanged": self.usn})
        self.conn.search(BASE, f"(member={dn})", attributes=["cn"])  # False when no group lists it
        for group in [e["dn"] for e in self.conn.response if e["type"] == "searchResEntry"]:
            assert self.conn.modify(group, {"member": [(MODIFY_DELETE, [dn])]}), self.conn.result
        assert self.conn.strategy.remove_entry(dn), dn
        self.server.info.other["highestCommittedUSN"] = [str(self.usn)]

    def touch(self, dn: str, changes: dict[str, Any]) -> None:
        self.usn += 1
        changes = {k: [(MODIFY_REPLACE, v if isinstance(v, list) else [v])] for k, v in changes.items()}
        changes["uSNChanged"] = [(MODIFY_REPLACE, [self.usn])]
        assert self.conn.modify(dn, changes), self.conn.result
        self.server.info.other["highestCommittedUSN"] = [str(self.usn)]


def config(page_size: int = 500) -> ADConfig:
    return ADConfig(url="ldaps://dc.corp.local", bind_user=SVC, password="pw", base_dn=BASE, page_size=page_size)


@pytest.fixture
def ad() -> MockDirectory:
    d = MockDirectory()
    eng = f"CN=Eng,CN=Users,{BASE}"
    team1 = f"CN=Team1,CN=Users,{BASE}"
    alice = d.user("alice", 1101, member_of=(eng,), userPrincipalName="alice@corp.local", mail="a@corp.local")
    bob = d.user("bob", 1102, member_of=(team1,), displayName="Bob B")
    d.user("carol", 1103, uac=514)
    d.group("Domain Users", 513, member_of=())
    d.group("Eng", 1200, members=(alice, team1))
    d.group("Team1", 1201, members=(bob,), member_of=(eng,))
    d.computer("PC1", 1300, "pc1.corp.local")
    return d


def test_values_are_parsed_into_records(ad: MockDirectory) -> None:
    snap = ADSync(config(), server=ad.server).sync()
    users = {u.username: u for u in snap.users}
    assert users["alice"] == ADUser(
        sid=f"{DOMAIN}-1101",
        username="alice",
        dn=f"CN=alice,CN=Users,{BASE}",
        upn="alice@corp.local",
        mail="a@corp.local",
        groups=(f"{DOMAIN}-1200", f"{DOMAIN}-513"),
        usn_changed=1002,
        primary_group=f"{DOMAIN}-513",  # primaryGroupID 513: Domain Users, never listed in memberOf
    )
    assert users["bob"].display_name == "Bob B"
    assert users["carol"].enabled is False
    assert users["carol"].groups == (f"{DOMAIN}-513",)
    groups = {g.name: g for g in snap.groups}
    assert groups["Team1"] == ADGroup(f"{DOMAIN}-1201", "Team1", f"CN=Team1,CN=Users,{BASE}", (f"{DOMAIN}-1200",))
    assert [(c.name, c.dns_host_name, c.sid) for c in snap.computers] == [("PC1", "pc1.corp.local", f"{DOMAIN}-1300")]
    assert (snap.highest_usn, snap.since_usn) == (ad.usn, None)


def test_paging_returns_every_entry_in_pages_of_the_configured_size(ad: MockDirectory) -> None:
    for i in range(11):
        ad.user(f"u{i:02d}", 2000 + i)
    client = ADClient(config(page_size=3), server=ad.server)
    client.connect()
    calls: list[int] = []
    search = client.conn.search

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append(kw["paged_size"])
        return search(*args, **kw)

    client.conn.search = counting
    names = [a["sAMAccountName"] for _dn, a in client.paged_search(BASE, "(objectCategory=person)", ["sAMAccountName"])]
    client.close()
    assert sorted(names) == sorted(["svc", "alice", "bob", "carol", *(f"u{i:02d}" for i in range(11))])
    # 15 entries, 3 a page (the mock may end with one empty page where AD sends an empty cookie)
    assert set(calls) == {3}
    assert len(calls) in (5, 6)


def test_transitive_groups_walk_nesting_and_survive_cycles(ad: MockDirectory) -> None:
    snap = ADSync(config(), server=ad.server).sync()
    closure = transitive_groups(snap)
    assert closure[f"{DOMAIN}-1102"] == {f"{DOMAIN}-1201", f"{DOMAIN}-1200", f"{DOMAIN}-513"}
    cyclic = DirectorySnapshot(
        users=[ADUser("S-u", "u", "cn=u", groups=("S-a",))],
        groups=[ADGroup("S-a", "a", "cn=a", ("S-b",)), ADGroup("S-b", "b", "cn=b", ("S-a", "S-c"))],
    )
    assert transitive_groups(cyclic) == {"S-u": {"S-a", "S-b", "S-c"}}


def test_incremental_picks_changed_objects_and_members_of_changed_groups(ad: MockDirectory) -> None:
    sync = ADSync(config(), server=ad.server)
    base = sync.sync()
    bob = f"CN=bob,CN=Users,{BASE}"
    eng = f"CN=Eng,CN=Users,{BASE}"
    ad.touch(f"CN=carol,CN=Users,{BASE}", {"mail": "carol@corp.local"})
    # bob joins Eng: the group changes; the mock does not maintain the back-link, so write it as AD would show it
    ad.touch(eng, {"member": [f"CN=alice,CN=Users,{BASE}", f"CN=Team1,CN=Users,{BASE}", bob]})
    assert ad.conn.modify(bob, {"memberOf": [(MODIFY_ADD, [eng])]})
    delta = sync.sync_changes(base)
    assert delta.since_usn == base.highest_usn + 1
    assert sorted(u.username for u in delta.users) == ["bob", "carol"]
    assert [g.name for g in delta.groups] == ["Eng"]
    bob_now = next(u for u in delta.users if u.username == "bob")
    assert f"{DOMAIN}-1200" in bob_now.groups


def test_bad_bind_and_missing_base_raise_without_partial_state(ad: MockDirectory) -> None:
    bad = ADConfig(url="ldaps://dc.corp.local", bind_user=SVC, password="wrong", base_dn=BASE)
    with pytest.raises(ADError, match=r"AD ldaps://dc\.corp\.local: bind as .* refused: invalidCredentials"):
        ADSync(bad, server=ad.server).sync()
    sync = ADSync(ADConfig(url="ldaps://dc.corp.local", bind_user=SVC, password="pw", base_dn="OU=Nope," + BASE),
                  server=ad.server)  # fmt: skip
    with pytest.raises(ADError, match=r"search .* under 'OU=Nope,DC=corp,DC=local' failed"):
        sync.sync()
    assert sync._members is None


def test_unreadable_entries_are_skipped_not_fatal(ad: MockDirectory) -> None:
    ad._add(f"CN=ghost,CN=Users,{BASE}", "person", {"cn": "ghost"})  # no sAMAccountName/objectSid visible
    snap = ADSync(config(), server=ad.server).sync()
    assert "ghost" not in {u.username for u in snap.users}
    assert len(snap.users) == 4


def test_incremental_reports_tombstones_and_the_whole_member_list_of_changed_groups(ad: MockDirectory) -> None:
    sync = ADSync(config(), server=ad.server)
    base = sync.sync(now_ms=NOW)
    assert base.mark is not None
    assert (base.mark.invocation_id, base.mark.highest_usn, base.mark.taken_at_ms) == (str(INVOCATION), ad.usn, NOW)
    alice, bob = f"CN=alice,CN=Users,{BASE}", f"CN=bob,CN=Users,{BASE}"
    eng, team1 = f"CN=Eng,CN=Users,{BASE}", f"CN=Team1,CN=Users,{BASE}"
    ad.delete(f"CN=carol,CN=Users,{BASE}")
    ad.delete(f"CN=PC1,CN=Computers,{BASE}")
    ad.touch(team1, {"member": []})  # bob leaves Team1
    assert ad.conn.modify(bob, {"memberOf": [(MODIFY_DELETE, [team1])]})
    ad.touch(eng, {"description": "engineering"})  # Eng changes, its members do not
    delta = sync.sync_from(base.mark, now_ms=NOW + 1)
    assert (delta.since_usn, delta.full_reason, delta.deletions_seen) == (base.highest_usn + 1, None, True)
    assert sorted((d.sid, d.kind) for d in delta.deleted) == [
        (f"{DOMAIN}-1103", "user"),
        (f"{DOMAIN}-1300", "computer"),
    ]
    assert all(isinstance(d, DeletedObject) and d.guid for d in delta.deleted)
    # Eng's list comes from memory (alice and Team1 are not re-read); Team1's is empty now
    assert sorted(delta.members, key=str) == [
        GroupMembers(f"{DOMAIN}-1200", users=("alice",), groups=(f"{DOMAIN}-1201",)),
        GroupMembers(f"{DOMAIN}-1201"),
    ]
    assert [u.username for u in delta.users] == ["bob"]  # he left a changed group: re-read
    assert next(u for u in delta.users if u.username == "bob").groups == (f"{DOMAIN}-513",)
    assert [(u.sid, u.primary_group) for u in delta.users] == [(f"{DOMAIN}-1102", f"{DOMAIN}-513")]
    assert alice not in {u.dn for u in delta.users}
    # a process without memory names every current member by reading it (bob left: the list replaces his edge)
    fresh = ADSync(config(), server=ad.server).sync(base.highest_usn + 1)
    assert sorted(u.username for u in fresh.users) == ["alice"]
    assert sorted(fresh.members, key=str) == sorted(delta.members, key=str)


def test_a_mark_that_cannot_be_trusted_gives_a_full_sync_and_says_why(
    ad: MockDirectory, caplog: pytest.LogCaptureFixture
) -> None:
    sync = ADSync(config(), server=ad.server)
    mark = sync.sync(now_ms=NOW).mark
    assert mark is not None
    cases = {
        "invocationId changed": (replace(mark, invocation_id=str(uuid.uuid4())), NOW),
        "tombstone lifetime of 180 days": (mark, NOW + 179 * DAY_MS + 1),  # a day of margin for clock skew
        "highestCommittedUSN is below": (replace(mark, highest_usn=ad.usn + 5), NOW),
    }
    for reason, (stale, now) in cases.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="clarion.sources.ad"):
            snap = sync.sync_from(stale, now_ms=now)
        assert snap.since_usn is None, reason
        assert snap.full_reason is not None
        assert reason in snap.full_reason
        assert [r.getMessage() for r in caplog.records] == [f"AD: running a FULL sync instead of an incremental one: "
                                                            f"{snap.full_reason}"]  # fmt: skip
    assert sync.sync_from(mark, now_ms=NOW + 178 * DAY_MS).since_usn == mark.highest_usn + 1
    ad.server.dit.pop(ad.deleted_objects)  # as an account without rights sees it: no readable container
    snap = ADSync(config(), server=ad.server).sync_from(mark, now_ms=NOW)
    assert snap.since_usn is None
    assert snap.full_reason is not None
    assert "cannot read CN=Deleted Objects" in snap.full_reason


def test_a_sync_mark_round_trips_and_a_damaged_one_is_refused_naming_the_field() -> None:
    mark = SyncMark(invocation_id=str(INVOCATION), highest_usn=4711, taken_at_ms=NOW, base_dn=BASE)
    assert SyncMark.from_json(mark.to_json()) == mark
    bad = {
        "{": "m.json: not JSON",
        "[1]": "m.json: expected an object with invocation_id, highest_usn, taken_at_ms, base_dn",
        '{"invocation_id": 5}': "m.json: invocation_id must be a string or null, got 5",
        '{"highest_usn": -1}': "m.json: highest_usn must be an integer >= 0, got -1",
        '{"highest_usn": 1, "taken_at_ms": true}': "m.json: taken_at_ms must be an integer >= 0, got True",
        '{"highest_usn": 1, "taken_at_ms": 2, "base_dn": ""}': "m.json: base_dn must be a non-empty string, got ''",
    }
    for text, message in bad.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            SyncMark.from_json(text, where="m.json")
