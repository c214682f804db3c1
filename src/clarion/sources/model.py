"""Plain identity records every source produces and the identity merger consumes.

Times are epoch milliseconds UTC; MACs are normalised ``aa:bb:cc:dd:ee:ff``; IPs canonical text.
``source`` says who told us (``ise``, ``ad``, ``file``, ``api``) and is kept on every fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(slots=True)
class DirectorySnapshot:
    """What one AD sync read: the whole directory, or what changed since ``since_usn``."""

    users: list[ADUser] = field(default_factory=list)
    groups: list[ADGroup] = field(default_factory=list)
    computers: list[ADComputer] = field(default_factory=list)
    highest_usn: int = 0
    since_usn: int | None = None  # None for a full sync
