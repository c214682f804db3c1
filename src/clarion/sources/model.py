"""Plain identity records every source produces and the identity merger consumes.

Times are epoch milliseconds UTC; MACs are normalised ``aa:bb:cc:dd:ee:ff``; IPs canonical text.
``source`` says who told us (``ise``, ``ad``, ``file``, ``api``) and is kept on every fact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Session:
    """A network access session (ISE pxGrid session, or a NAC export row)."""

    mac: str
    ips: tuple[str, ...] = ()
    username: str | None = None
    sgt: int | None = None
    sgt_name: str | None = None
    switch_id: str | None = None  # NAS identifier or NAS IP of the switch
    interface: str | None = None  # nasPortId, e.g. GigabitEthernet1/0/7
    vlan: int | None = None
    endpoint_profile: str | None = None
    state: str = "STARTED"  # AUTHENTICATING | AUTHENTICATED | POSTURED | STARTED | DISCONNECTED
    timestamp_ms: int = 0
    ad_groups: tuple[str, ...] = ()  # group names when the source knows them (pxGrid UserGroup)
    source: str = "ise"


@dataclass(frozen=True, slots=True)
class ADGroup:
    sid: str  # objectSid, S-1-5-21-...
    name: str  # sAMAccountName (or cn)
    dn: str
    member_of: tuple[str, ...] = ()  # SIDs of direct parent groups
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ADUser:
    sid: str
    username: str  # sAMAccountName
    dn: str
    upn: str | None = None
    display_name: str | None = None
    mail: str | None = None
    groups: tuple[str, ...] = ()  # SIDs of direct groups, primary group included
    enabled: bool = True
    usn_changed: int = 0
    # SID of the primary group (AD primaryGroupID): never in a group's `member`, so a replaced member list keeps it
    primary_group: str | None = None


@dataclass(frozen=True, slots=True)
class ADComputer:
    sid: str
    name: str  # sAMAccountName without the trailing $
    dns_host_name: str | None = None
    operating_system: str | None = None
    usn_changed: int = 0


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    """A TrustSec SGT as ISE knows it."""

    value: int
    name: str
    ise_id: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Sgacl:
    name: str
    aces: str  # the ACL text, one ACE per line, e.g. "permit tcp dst eq 443"
    ise_id: str | None = None
    ip_version: str = "IP_AGNOSTIC"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class EgressCell:
    """One cell of ISE's egress matrix: the SGACLs from a source SGT to a destination SGT."""

    src_sgt: int
    dst_sgt: int
    sgacls: tuple[str, ...] = ()  # SGACL names, in order
    default_rule: str = "NONE"  # NONE | PERMIT_IP | DENY_IP
    status: str = "ENABLED"
    ise_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeletedObject:
    """A directory object deleted since the last sync (an AD tombstone): the SID is what the merger keys on."""

    sid: str
    kind: str  # user | group | computer
    usn_changed: int
    guid: str | None = None  # objectGUID, kept for the log: AD keeps it on the tombstone too


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """The complete direct membership of a changed group: it replaces the group's old edges.

    Memberships through a user's primary group are not listed here; those edges come from the users' own records.
    """

    group_sid: str
    users: tuple[str, ...] = ()  # sAMAccountNames of member users
    groups: tuple[str, ...] = ()  # objectSids of member groups


@dataclass(frozen=True, slots=True)
class SyncMark:
    """Where the next incremental sync resumes: which DC (its invocationId), from which USN, taken when.

    USNs are per DC and per database incarnation, so a mark is only valid against the same invocationId.
    """

    invocation_id: str | None
    highest_usn: int
    taken_at_ms: int
    base_dn: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "AD sync mark") -> SyncMark:
        """Parse a stored mark; a damaged one is an error naming the field, never a silent full sync."""
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected an object with invocation_id, highest_usn, taken_at_ms, base_dn")
        inv, usn, at, base = (raw.get(k) for k in ("invocation_id", "highest_usn", "taken_at_ms", "base_dn"))
        if inv is not None and not isinstance(inv, str):
            raise ValueError(f"{where}: invocation_id must be a string or null, got {inv!r}")
        usn, at = _natural(usn, "highest_usn", where), _natural(at, "taken_at_ms", where)
        if not isinstance(base, str) or not base:
            raise ValueError(f"{where}: base_dn must be a non-empty string, got {base!r}")
        return cls(invocation_id=inv, highest_usn=usn, taken_at_ms=at, base_dn=base)


def _natural(value: Any, name: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: {name} must be an integer >= 0, got {value!r}")
    return value


@dataclass(slots=True)
class DirectorySnapshot:
    """What one directory sync read: the whole directory, or what changed since ``since_usn``.

    Any directory source reports through this one record, so the merge has one path: a full snapshot
    (``since_usn is None``) replaces everything the source owns; an incremental one also carries the
    deletions it saw and the whole member lists of changed groups (both empty in a full snapshot).
    """

    users: list[ADUser] = field(default_factory=list)
    groups: list[ADGroup] = field(default_factory=list)
    computers: list[ADComputer] = field(default_factory=list)
    highest_usn: int = 0
    since_usn: int | None = None  # None for a full sync
    deleted: list[DeletedObject] = field(default_factory=list)
    members: list[GroupMembers] = field(default_factory=list)
    mark: SyncMark | None = None  # resume point for the next incremental sync
    deletions_seen: bool = True  # False when the source could not read its deletions (incremental only)
    full_reason: str | None = None  # why an incremental request ran as a full sync
