"""Active Directory sync: the parts that need no LDAP library (settings, filters, value parsing, group nesting).

Kept apart from :mod:`clarion.sources.ad` (the only module that imports ``ldap3``) so these rules can be read and
tested without a connection; every public name here is re-exported from ``clarion.sources.ad``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from clarion.sources.model import DirectorySnapshot

PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000  # AD's default MaxPageSize: asking for more is silently capped by the server
UAC_ACCOUNTDISABLE = 0x2

USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
GROUP_FILTER = "(objectCategory=group)"
COMPUTER_FILTER = "(objectCategory=computer)"
USER_ATTRS = (
    "sAMAccountName",
    "userPrincipalName",
    "objectSid",
    "displayName",
    "mail",
    "memberOf",
    "primaryGroupID",
    "userAccountControl",
    "uSNChanged",
)
GROUP_ATTRS = ("sAMAccountName", "cn", "objectSid", "description", "member", "memberOf", "uSNChanged")
COMPUTER_ATTRS = ("sAMAccountName", "objectSid", "dNSHostName", "operatingSystem", "uSNChanged")


class ADError(Exception):
    """An AD sync failed; the message names the server URL and the operation, never the password."""


@dataclass(frozen=True, slots=True)
class ADConfig:
    """Where and as whom to connect. ``url`` is ``ldaps://host[:636]`` or ``ldap://host[:389]`` with ``start_tls``."""

    url: str
    bind_user: str  # 'svc-clarion@corp.local' or 'CORP\\svc-clarion'
    password: str = field(repr=False)
    base_dn: str | None = None  # default: the server's defaultNamingContext
    start_tls: bool = False
    ca_file: str | None = None
    verify_tls: bool = True
    page_size: int = PAGE_SIZE
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"AD url must be ldaps://host[:port] or ldap://host[:port], got {self.url!r}")
        if parts.scheme == "ldap" and not self.start_tls:
            raise ValueError(f"AD url {self.url!r} is plain ldap://: set start_tls=True or use ldaps://")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {self.page_size}")


def guid_text(value: Any) -> str:
    """objectGUID / invocationId (16 bytes, little-endian GUID layout) as the usual lower-case text form."""
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    return str(uuid.UUID(str(value).strip("{}").lower()))


def first_value(attrs: Mapping[str, Any], name: str) -> Any:
    """The first value of a possibly multi-valued attribute (None when absent or empty)."""
    value = attrs.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def all_values(attrs: Mapping[str, Any], name: str) -> list[Any]:
    """Every value of an attribute as a list, whether the entry held a list, one value or nothing."""
    value = attrs.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def text_value(value: Any) -> str | None:
    """An attribute value as text (bytes are UTF-8 in AD); empty means absent."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8")
    text = str(value)
    return text or None


def int_value(value: Any, default: int = 0) -> int:
    """An integer attribute (USNs, flags, RIDs arrive as text); absent or empty gives ``default``."""
    if value is None or value == "":
        return default
    return int(value)


def domain_sid_of(sid: str) -> str:
    """The domain part of an account SID (everything before the RID)."""
    return sid.rsplit("-", 1)[0]


def dn_key(dn: str) -> str:
    """DNs compare case-insensitively in AD; this is the form used as a dictionary key."""
    return dn.lower()


class TransitiveStrategy(Protocol):
    """How a user's transitive groups are found: client-side BFS (default) or a server-side AD query."""

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]: ...


def transitive_groups(snapshot: DirectorySnapshot) -> dict[str, set[str]]:
    """user SID -> every group SID reached through direct groups (primary included) and group nesting.

    Pure BFS over ``ADGroup.member_of``; cycles (legal in AD) are walked once. Groups not in the snapshot
    are kept as reached but not expanded further.
    """
    parents = {g.sid: g.member_of for g in snapshot.groups}
    closure: dict[str, frozenset[str]] = {}

    def close(start: str) -> frozenset[str]:
        cached = closure.get(start)
        if cached is not None:
            return cached
        seen = {start}
        queue = [start]
        while queue:
            current = queue.pop()
            for parent in parents.get(current, ()):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        result = frozenset(seen)
        closure[start] = result
        return result

    out: dict[str, set[str]] = {}
    for user in snapshot.users:
        groups: set[str] = set()
        for direct in user.groups:
            groups |= close(direct)
        out[user.sid] = groups
    return out


class ClientBFS:
    """Default strategy: we read every group anyway, so nesting is resolved locally at no LDAP cost."""

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]:
        return transitive_groups(snapshot)
