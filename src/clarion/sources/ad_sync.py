"""What a full or incremental (uSNChanged) AD sync reads and how it remembers group membership between syncs.

Written against :class:`DirectoryReader` rather than ldap3, so the incremental rules sit apart from the LDAP
plumbing; :class:`clarion.sources.ad.ADSync` plugs the real ldap3 client and SID decoder in.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
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
from clarion.sources.model import ADComputer, ADGroup, ADUser, DirectorySnapshot

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


SidDecoder = Callable[[Any], str]  # an objectSid value as the LDAP library returned it -> 'S-1-...'


class IncrementalSync(ABC):
    """Full and incremental sync over any :class:`DirectoryReader`; keeps the group membership seen last time."""

    def __init__(self, decode_sid: SidDecoder) -> None:
        self._decode_sid = decode_sid
        self._members: dict[str, frozenset[str]] | None = None  # group dn key -> member dn keys
        self._dn_sid: dict[str, str] = {}  # group dn key -> objectSid

    @abstractmethod
    def client(self) -> AbstractContextManager[DirectoryReader]:
        """A fresh connection, bound on enter and closed on exit."""

    def sync_changes(self, previous: DirectorySnapshot) -> DirectorySnapshot:
        """Everything changed after ``previous`` was taken."""
        return self.sync(since_usn=previous.highest_usn + 1)

    def sync(self, since_usn: int | None = None) -> DirectorySnapshot:
        """Read the directory (or what changed at/after ``since_usn``); on failure raise ADError, return nothing."""
        if since_usn is not None and since_usn < 0:
            raise ValueError(f"since_usn must be >= 0, got {since_usn}")
        with self.client() as client:
            snapshot, members, dn_sid = self._read(client, since_usn)
        # commit the remembered state only once the whole read succeeded
        if since_usn is None or self._members is None:
            self._members = members if since_usn is None else None
            self._dn_sid = dn_sid
        else:
            self._members.update(members)
            self._dn_sid.update(dn_sid)
        return snapshot

    def _read(
        self, client: DirectoryReader, since_usn: int | None
    ) -> tuple[DirectorySnapshot, dict[str, frozenset[str]], dict[str, str]]:
        highest = client.highest_committed_usn()  # read first: changes during the sync are re-read next time
        base = client.base_dn()
        usn = "" if since_usn is None else f"(uSNChanged>={int(since_usn)})"
        users = list(client.paged_search(base, f"(&{USER_FILTER}{usn})", USER_ATTRS))
        groups = list(client.paged_search(base, f"(&{GROUP_FILTER}{usn})", GROUP_ATTRS))
        computers = list(client.paged_search(base, f"(&{COMPUTER_FILTER}{usn})", COMPUTER_ATTRS))
        dn_sid = {} if since_usn is None else dict(self._dn_sid)
        members: dict[str, frozenset[str]] = {}
        for dn, attrs in groups:
            if attrs.get("objectSid"):
                dn_sid[dn_key(dn)] = self._decode_sid(first_value(attrs, "objectSid"))
            members[dn_key(dn)] = frozenset(dn_key(str(m)) for m in all_values(attrs, "member"))
        if since_usn is not None:
            affected: set[str] = set()
            for key, now in members.items():
                before = None if self._members is None else self._members.get(key)
                affected |= now if before is None else now ^ before
            affected -= {dn_key(dn) for dn, _ in users} | {dn_key(dn) for dn, _ in groups}
            if affected:
                users += list(client.search_by_dns(affected, USER_FILTER, USER_ATTRS))
                groups += list(client.search_by_dns(affected, GROUP_FILTER, GROUP_ATTRS))
        wanted = {dn_key(str(p)) for _dn, attrs in users + groups for p in all_values(attrs, "memberOf")}
        unknown = wanted - dn_sid.keys()
        if unknown:
            for dn, attrs in client.search_by_dns(unknown, GROUP_FILTER, ["objectSid"]):
                dn_sid[dn_key(dn)] = self._decode_sid(first_value(attrs, "objectSid"))
        snapshot = DirectorySnapshot(
            users=[u for u in (self._user(dn, a, dn_sid) for dn, a in users) if u is not None],
            groups=[g for g in (self._group(dn, a, dn_sid) for dn, a in groups) if g is not None],
            computers=[c for c in (self._computer(dn, a) for dn, a in computers) if c is not None],
            highest_usn=highest,
            since_usn=since_usn,
        )
        return snapshot, members, dn_sid

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
        primary = int_value(first_value(attrs, "primaryGroupID"))
        if primary:  # memberOf never lists the primary group (Domain Users): add it explicitly
            primary_sid = f"{domain_sid_of(sid)}-{primary}"
            if primary_sid not in groups:
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
