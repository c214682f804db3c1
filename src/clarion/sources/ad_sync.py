"""What a full or incremental (uSNChanged) AD sync reads and how it remembers group membership between syncs.

Written against :class:`DirectoryReader` rather than ldap3, so the incremental rules sit apart from the LDAP
plumbing; :class:`clarion.sources.ad.ADSync` plugs the real ldap3 client and SID decoder in.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from clarion.sources.ad_model import (
    COMPUTER_ATTRS,
    COMPUTER_FILTER,
    GROUP_ATTRS,
    GROUP_FILTER,
    UAC_ACCOUNTDISABLE,
    USER_ATTRS,
    USER_FILTER,
    all_values,
    dn_key,
    domain_sid_of,
    first_value,
    int_value,
    text_value,
)
from clarion.sources.model import (
    ADComputer,
    ADGroup,
    ADUser,
    DeletedObject,
    DirectorySnapshot,
    GroupMembers,
    SyncMark,
)

# the AD sync's warnings keep one logger name, whichever of its modules emits them
log = logging.getLogger("clarion.sources.ad")


class DirectoryReader(Protocol):
    """The reads a sync needs from one bound LDAP connection (:class:`clarion.sources.ad.ADClient`)."""

    def highest_committed_usn(self) -> int: ...

    def base_dn(self) -> str: ...

    def paged_search(
        self, base: str, search_filter: str, attributes: Iterable[str]
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def search_by_dns(self, dns: Iterable[str], object_filter: str, attributes: Iterable[str]) -> Iterator[Any]: ...

    def deleted_since(self, since_usn: int) -> list[DeletedObject]: ...

    def can_read_deleted(self) -> bool: ...

    def invocation_id(self) -> str | None: ...

    def deleted_lifetime_days(self) -> int: ...


SidDecoder = Callable[[Any], str]  # an objectSid value as the LDAP library returned it -> 'S-1-...'
DAY_MS = 86_400_000
CLOCK_MARGIN_MS = DAY_MS  # a mark this close to the tombstone horizon is treated as past it (clock skew)


@dataclass(slots=True)
class _Memory:
    """What a sync learnt that the next incremental one needs; replaced only after a whole read succeeded."""

    members: dict[str, frozenset[str]] | None = None  # group dn key -> member dn keys (None: not known)
    dn_sid: dict[str, str] = field(default_factory=dict)  # group dn key -> objectSid
    principals: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # dn key -> (kind, name, sid)


class IncrementalSync(ABC):
    """Full and incremental sync over any :class:`DirectoryReader`; keeps what it saw last time.

    Incremental reads return what changed, the tombstones of what was deleted, and the whole member list of
    every changed group (``member`` changes move the group's uSNChanged, never the member's), so the graph can
    replace that group's edges; :meth:`sync_from` turns a resume mark the DC cannot honour into a full sync.
    """

    def __init__(self, decode_sid: SidDecoder) -> None:
        self._decode_sid = decode_sid
        self._memory = _Memory()

    @property
    def _members(self) -> dict[str, frozenset[str]] | None:
        return self._memory.members

    @abstractmethod
    def client(self) -> AbstractContextManager[DirectoryReader]:
        """A fresh connection, bound on enter and closed on exit."""

    def sync_changes(self, previous: DirectorySnapshot) -> DirectorySnapshot:
        """Everything changed (and deleted) after ``previous`` was taken."""
        return self.sync(since_usn=previous.highest_usn + 1)

    def sync(self, since_usn: int | None = None, *, now_ms: int | None = None) -> DirectorySnapshot:
        """Read the directory (or what changed at/after ``since_usn``); on failure raise ADError, return nothing."""
        if since_usn is not None and since_usn < 0:
            raise ValueError(f"since_usn must be >= 0, got {since_usn}")
        with self.client() as client:
            snapshot, memory = self._read(client, since_usn, _now(now_ms))
        self._commit(memory, snapshot)
        return snapshot

    def sync_from(self, mark: SyncMark | None, *, now_ms: int | None = None) -> DirectorySnapshot:
        """Incremental from ``mark`` when it is still valid against this DC, else a full sync saying why."""
        now = _now(now_ms)
        with self.client() as client:
            reason = "no previous sync mark" if mark is None else self._why_full(client, mark, now)
            if mark is not None and reason is not None:
                log.warning("AD: running a FULL sync instead of an incremental one: %s", reason)
            since = None if mark is None or reason is not None else mark.highest_usn + 1
            snapshot, memory = self._read(client, since, now)
        snapshot.full_reason = reason if mark is not None else None
        self._commit(memory, snapshot)
        return snapshot

    @staticmethod
    def _why_full(client: DirectoryReader, mark: SyncMark, now_ms: int) -> str | None:
        """The reason a stored mark cannot drive an incremental sync (None: it can)."""
        base = client.base_dn()
        if dn_key(base) != dn_key(mark.base_dn):
            return f"the base DN changed ({mark.base_dn!r} -> {base!r})"
        current = client.invocation_id()
        if current is None or current != mark.invocation_id:
            return (
                f"the DC's invocationId changed ({mark.invocation_id} -> {current}): a restored or different DC, "
                "whose USNs do not continue the stored mark"
            )
        if client.highest_committed_usn() < mark.highest_usn:
            return f"the DC's highestCommittedUSN is below the stored mark {mark.highest_usn} (restored DC?)"
        lifetime = client.deleted_lifetime_days()
        age = now_ms - mark.taken_at_ms
        if age > lifetime * DAY_MS - CLOCK_MARGIN_MS:
            return (
                f"the last sync is {age / DAY_MS:.1f} days old, beyond the tombstone lifetime of {lifetime} days "
                "(less one day for clock skew): deletions since then may no longer be visible"
            )
        if not client.can_read_deleted():
            return (
                "the service account cannot read CN=Deleted Objects (grant it List Contents and Read Property "
                "there), so an incremental sync would miss deletions"
            )
        return None

    def _commit(self, memory: _Memory, snapshot: DirectorySnapshot) -> None:
        """Keep what this read learnt; an incremental read without earlier memory cannot vouch for all members."""
        if snapshot.since_usn is None:
            self._memory = memory
            return
        old = self._memory
        gone = {d.sid for d in snapshot.deleted}
        if old.members is not None:
            old.members.update(memory.members or {})
        old.dn_sid.update(memory.dn_sid)
        old.principals.update(memory.principals)
        if gone:
            dead = {k for k, (_kind, _name, sid) in old.principals.items() if sid in gone}
            for key in dead:
                old.principals.pop(key, None)
                old.dn_sid.pop(key, None)
                if old.members is not None:
                    old.members.pop(key, None)

    def _read(self, client: DirectoryReader, since_usn: int | None, now_ms: int) -> tuple[DirectorySnapshot, _Memory]:
        invocation = client.invocation_id()
        highest = client.highest_committed_usn()  # read first: changes during the sync are re-read next time
        base = client.base_dn()
        usn = "" if since_usn is None else f"(uSNChanged>={int(since_usn)})"
        users = list(client.paged_search(base, f"(&{USER_FILTER}{usn})", USER_ATTRS))
        groups = list(client.paged_search(base, f"(&{GROUP_FILTER}{usn})", GROUP_ATTRS))
        computers = list(client.paged_search(base, f"(&{COMPUTER_FILTER}{usn})", COMPUTER_ATTRS))
        incremental = since_usn is not None
        dn_sid = dict(self._memory.dn_sid) if incremental else {}
        members: dict[str, frozenset[str]] = {}
        for dn, attrs in groups:
            if attrs.get("objectSid"):
                dn_sid[dn_key(dn)] = self._decode_sid(first_value(attrs, "objectSid"))
            members[dn_key(dn)] = frozenset(dn_key(str(m)) for m in all_values(attrs, "member"))
        changed = [dn for dn, _ in groups]
        deleted: list[DeletedObject] = []
        deletions_seen = True
        if since_usn is not None:
            known = self._memory.principals
            affected: set[str] = set()
            for key, now in members.items():
                before = None if self._memory.members is None else self._memory.members.get(key)
                # joined or left (remembered), or every current member we cannot name from memory
                affected |= (now if before is None else now ^ before) | {m for m in now if m not in known}
            affected -= {dn_key(dn) for dn, _ in users} | {dn_key(dn) for dn, _ in groups}
            if affected:
                users += list(client.search_by_dns(affected, USER_FILTER, USER_ATTRS))
                groups += list(client.search_by_dns(affected, GROUP_FILTER, GROUP_ATTRS))
            deletions_seen = client.can_read_deleted()
            if deletions_seen:
                deleted = client.deleted_since(since_usn)
            else:
                log.warning(
                    "AD: the service account cannot read CN=Deleted Objects: this incremental sync does not see "
                    "deletions (a full sync removes them)"
                )
        wanted = {dn_key(str(p)) for _dn, attrs in users + groups for p in all_values(attrs, "memberOf")}
        unknown = wanted - dn_sid.keys()
        if unknown:
            for dn, attrs in client.search_by_dns(unknown, GROUP_FILTER, ["objectSid"]):
                dn_sid[dn_key(dn)] = self._decode_sid(first_value(attrs, "objectSid"))
        ad_users = [u for u in (self._user(dn, a, dn_sid) for dn, a in users) if u is not None]
        ad_groups = [g for g in (self._group(dn, a, dn_sid) for dn, a in groups) if g is not None]
        principals = {dn_key(u.dn): ("user", u.username, u.sid) for u in ad_users}
        principals |= {dn_key(g.dn): ("group", g.sid, g.sid) for g in ad_groups}
        snapshot = DirectorySnapshot(
            users=ad_users,
            groups=ad_groups,
            computers=[c for c in (self._computer(dn, a) for dn, a in computers) if c is not None],
            highest_usn=highest,
            since_usn=since_usn,
            deleted=deleted,
            mark=SyncMark(invocation_id=invocation, highest_usn=highest, taken_at_ms=now_ms, base_dn=base),
            deletions_seen=deletions_seen,
        )
        if incremental:
            names = {**self._memory.principals, **principals}
            snapshot.members = [self._group_members(dn_sid[dn_key(dn)], members[dn_key(dn)], names)
                                for dn in changed if dn_key(dn) in dn_sid]  # fmt: skip
        memory = _Memory(members=members, dn_sid=dn_sid, principals=principals)
        return snapshot, memory

    @staticmethod
    def _group_members(
        sid: str, member_keys: frozenset[str], names: Mapping[str, tuple[str, str, str]]
    ) -> GroupMembers:
        """A changed group's whole member list as graph keys; members that are neither (computers, contacts,
        foreign principals) have no MEMBER_OF edge in the graph and are left out."""
        users, groups = [], []
        for key in member_keys:
            kind, name, _sid = names.get(key, ("", "", ""))
            if kind == "user":
                users.append(name)
            elif kind == "group":
                groups.append(name)
        return GroupMembers(group_sid=sid, users=tuple(sorted(users)), groups=tuple(sorted(groups)))

    @staticmethod
    def _parents(attrs: Mapping[str, Any], dn_sid: Mapping[str, str], dn: str) -> list[str]:
        out = []
        for parent in all_values(attrs, "memberOf"):
            sid = dn_sid.get(dn_key(str(parent)))
            if sid is None:
                log.warning("AD: %s is a member of %s, which could not be resolved to a SID; skipped", dn, parent)
            else:
                out.append(sid)
        return out

    def _user(self, dn: str, attrs: Mapping[str, Any], dn_sid: Mapping[str, str]) -> ADUser | None:
        raw_sid, name = first_value(attrs, "objectSid"), text_value(first_value(attrs, "sAMAccountName"))
        if raw_sid is None or name is None:
            log.warning("AD: user %s has no objectSid or sAMAccountName (not readable?); skipped", dn)
            return None
        sid = self._decode_sid(raw_sid)
        groups = sorted(set(self._parents(attrs, dn_sid, dn)))
        rid = int_value(first_value(attrs, "primaryGroupID"))
        primary_sid = f"{domain_sid_of(sid)}-{rid}" if rid else None
        if primary_sid is not None and primary_sid not in groups:  # memberOf never lists the primary group
            groups.append(primary_sid)
        return ADUser(
            sid=sid,
            username=name,
            dn=dn,
            upn=text_value(first_value(attrs, "userPrincipalName")),
            display_name=text_value(first_value(attrs, "displayName")),
            mail=text_value(first_value(attrs, "mail")),
            groups=tuple(groups),
            enabled=not int_value(first_value(attrs, "userAccountControl")) & UAC_ACCOUNTDISABLE,
            usn_changed=int_value(first_value(attrs, "uSNChanged")),
            primary_group=primary_sid,
        )

    def _group(self, dn: str, attrs: Mapping[str, Any], dn_sid: Mapping[str, str]) -> ADGroup | None:
        raw_sid = first_value(attrs, "objectSid")
        name = text_value(first_value(attrs, "sAMAccountName")) or text_value(first_value(attrs, "cn"))
        if raw_sid is None or name is None:
            log.warning("AD: group %s has no objectSid or name (not readable?); skipped", dn)
            return None
        return ADGroup(
            sid=self._decode_sid(raw_sid),
            name=name,
            dn=dn,
            member_of=tuple(sorted(set(self._parents(attrs, dn_sid, dn)))),
            description=text_value(first_value(attrs, "description")),
        )

    def _computer(self, dn: str, attrs: Mapping[str, Any]) -> ADComputer | None:
        raw_sid, name = first_value(attrs, "objectSid"), text_value(first_value(attrs, "sAMAccountName"))
        if raw_sid is None or name is None:
            log.warning("AD: computer %s has no objectSid or sAMAccountName; skipped", dn)
            return None
        return ADComputer(
            sid=self._decode_sid(raw_sid),
            name=name[:-1] if name.endswith("$") else name,
            dns_host_name=text_value(first_value(attrs, "dNSHostName")),
            operating_system=text_value(first_value(attrs, "operatingSystem")),
            usn_changed=int_value(first_value(attrs, "uSNChanged")),
        )


def _now(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms
