"""Active Directory sync over LDAP (ldap3): users, groups with nesting, computers, full and incremental.

This is the only module that imports ``ldap3``. The client is synchronous (ldap3 is); call it from async code
through :func:`sync_directory_async`, which runs it in a worker thread. Semantics of incremental sync, service
account rights and TLS choices are documented in ``docs/ise-ers-and-ad.md``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import ldap3  # type: ignore[import-untyped]
from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]
from ldap3.protocol.formatters.formatters import format_sid  # type: ignore[import-untyped]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]

from clarion.sources.model import ADComputer, ADGroup, ADUser, DirectorySnapshot

log = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000  # AD's default MaxPageSize: asking for more is silently capped by the server
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
SHOW_DELETED_OID = "1.2.840.113556.1.4.417"
UAC_ACCOUNTDISABLE = 0x2
DN_LOOKUP_BATCH = 50
BINARY_ATTRS = ("objectSid", "tokenGroups")

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


@dataclass(frozen=True, slots=True)
class DeletedObject:
    """A tombstone seen with the Show Deleted control: the SID is what the merger keys on."""

    sid: str
    kind: str  # user | group | computer
    usn_changed: int


def _first(attrs: Mapping[str, Any], name: str) -> Any:
    value = attrs.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _many(attrs: Mapping[str, Any], name: str) -> list[Any]:
    value = attrs.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8")
    text = str(value)
    return text or None


def _sid(value: Any) -> str:
    """objectSid as ``S-1-...`` whether ldap3 formatted it (schema loaded) or handed us raw bytes."""
    if isinstance(value, bytes):
        return str(format_sid(value))
    if isinstance(value, str) and value.startswith("S-1-"):
        return value
    raise ValueError(f"objectSid is not a SID: {value!r}")


def _int(value: Any, default: int = 0) -> int:
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


class ADClient:
    """One bound LDAP connection to one DC; every failure is re-raised as :class:`ADError` naming the URL."""

    def __init__(self, config: ADConfig, *, server: Any = None) -> None:
        self.config = config
        self._server = server  # tests inject an ldap3 MOCK server; None means a real one from config.url
        self._conn: Any = None
        self._naming_context: str | None = None

    def __enter__(self) -> ADClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, what: str, exc: BaseException | None = None) -> ADError:
        detail = f": {exc}" if exc is not None else ""
        return ADError(f"AD {self.config.url}: {what}{detail}")

    def _build_server(self) -> Any:
        cfg = self.config
        parts = urlsplit(cfg.url)
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if cfg.verify_tls else ssl.CERT_NONE,
            ca_certs_file=cfg.ca_file,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        use_ssl = parts.scheme == "ldaps"
        port = parts.port or (636 if use_ssl else 389)
        return ldap3.Server(
            parts.hostname,
            port=port,
            use_ssl=use_ssl,
            tls=tls,
            # no schema download: values are parsed here (faster than ldap3's schema formatting on 10k+ entries)
            get_info=ldap3.NONE,
            connect_timeout=max(1, math.ceil(cfg.timeout_s)),
        )

    def connect(self) -> None:
        """Open, secure (LDAPS or StartTLS) and bind; nothing is read before the bind succeeded."""
        cfg = self.config
        try:
            server = self._server if self._server is not None else self._build_server()
            mock = self._server is not None
            conn = ldap3.Connection(
                server,
                user=cfg.bind_user,
                password=cfg.password,
                client_strategy=ldap3.MOCK_SYNC if mock else ldap3.SYNC,
                receive_timeout=max(1, math.ceil(cfg.timeout_s)),  # ldap3 packs it as an int
                raise_exceptions=False,
                auto_range=True,
                read_only=True,
            )
            conn.open()
            if cfg.start_tls and not mock and not conn.start_tls():
                raise self._fail("StartTLS failed", RuntimeError(conn.result.get("description")))
            if not conn.bind():
                result = conn.result or {}
                raise self._fail(f"bind as {cfg.bind_user!r} refused", RuntimeError(result.get("description")))
        except ADError:
            raise
        except Exception as exc:  # ldap3 leaks struct/socket/ssl errors: all become ADError naming the server
            raise self._fail("connect/bind failed", exc) from exc
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.unbind()
            except (LDAPException, OSError):  # closing a dead connection is not worth an error
                log.debug("unbind of %s failed", self.config.url, exc_info=True)
            self._conn = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise self._fail("not connected")
        return self._conn

    def root_dse(self, attributes: Iterable[str]) -> dict[str, Any]:
        """Read the rootDSE fresh (ldap3's cached server info would be stale for highestCommittedUSN)."""
        if self._server is not None:  # ldap3's MOCK has no rootDSE entry: use the DSA info it was built with
            other = self._server.info.other if self._server.info else {}
            return {name: other[name] for name in attributes if name in other}
        try:
            # '*' and not the names: rootDSE attributes such as highestCommittedUSN are not in the schema
            ok = self.conn.search("", "(objectClass=*)", ldap3.BASE, attributes=[ldap3.ALL_ATTRIBUTES])
        except LDAPException as exc:
            raise self._fail("rootDSE read failed", exc) from exc
        if not ok or not self.conn.response:
            raise self._fail("rootDSE read failed", RuntimeError(self.conn.result.get("description")))
        found = self.conn.response[0]["attributes"]
        return {name: found[name] for name in attributes if name in found}

    def naming_context(self) -> str:
        """The domain's root DN (read once per connection); DN lookups search here even when base_dn is an OU."""
        if self._naming_context is None:
            value = _text(_first(self.root_dse(["defaultNamingContext"]), "defaultNamingContext"))
            if not value:
                if not self.config.base_dn:
                    raise self._fail("server has no defaultNamingContext; set base_dn")
                value = self.config.base_dn
            self._naming_context = value
        return self._naming_context

    def base_dn(self) -> str:
        return self.config.base_dn or self.naming_context()

    def highest_committed_usn(self) -> int:
        return _int(_first(self.root_dse(["highestCommittedUSN"]), "highestCommittedUSN"))

    def paged_search(
        self,
        base: str,
        search_filter: str,
        attributes: Iterable[str],
        *,
        scope: str = "SUBTREE",
        controls: list[tuple[str, bool, Any]] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(dn, attributes)`` page by page (Simple Paged Results); any error code raises, never truncates."""
        conn = self.conn
        cookie: Any = None
        attrs = list(attributes)
        ldap_scope = {"SUBTREE": ldap3.SUBTREE, "BASE": ldap3.BASE, "LEVEL": ldap3.LEVEL}[scope]
        while True:
            try:
                conn.search(
                    base,
                    search_filter,
                    ldap_scope,
                    attributes=attrs,
                    paged_size=self.config.page_size,
                    paged_cookie=cookie,
                    controls=controls,
                )
            except LDAPException as exc:
                raise self._fail(f"search {search_filter} under {base!r} failed", exc) from exc
            result = conn.result or {}
            code = result.get("result", 0)
            if code not in (0, 32) or (code == 32 and scope != "BASE"):  # 32 noSuchObject is 'empty' for BASE only
                raise self._fail(
                    f"search {search_filter} under {base!r} failed",
                    RuntimeError(f"{result.get('description')} {result.get('message', '')}".strip()),
                )
            for entry in conn.response or ():
                if entry.get("type") == "searchResEntry":
                    values = dict(entry["attributes"])
                    raw = entry.get("raw_attributes") or {}
                    for name in BINARY_ATTRS:  # a SID can happen to be valid UTF-8: always take the bytes
                        if raw.get(name):
                            values[name] = raw[name]
                    yield entry["dn"], values
            paged = (result.get("controls") or {}).get("1.2.840.113556.1.4.319")
            cookie = paged["value"]["cookie"] if paged else None
            if not cookie:
                return

    def search_by_dns(self, dns: Iterable[str], object_filter: str, attributes: Iterable[str]) -> Iterator[Any]:
        """Fetch objects by DN in OR-batches; values are escaped, so a DN with ``(*)\\`` cannot alter the filter."""
        pending = sorted(set(dns))
        attrs = list(attributes)
        base = self.naming_context()
        for start in range(0, len(pending), DN_LOOKUP_BATCH):
            chunk = pending[start : start + DN_LOOKUP_BATCH]
            ors = "".join(f"(distinguishedName={escape_filter_chars(dn)})" for dn in chunk)
            yield from self.paged_search(base, f"(&{object_filter}(|{ors}))", attrs)

    def groups_in_chain(self, user_dn: str) -> list[tuple[str, dict[str, Any]]]:
        """Server-side transitive groups of one DN (LDAP_MATCHING_RULE_IN_CHAIN); real AD/Samba only."""
        flt = f"(&{GROUP_FILTER}(member:{IN_CHAIN}:={escape_filter_chars(user_dn)}))"
        return list(self.paged_search(self.naming_context(), flt, ["objectSid", "sAMAccountName"]))

    def token_groups(self, user_dn: str) -> list[str]:
        """Security-group SIDs from the constructed ``tokenGroups`` (base-scope read; expensive at scale)."""
        entries = list(self.paged_search(user_dn, "(objectClass=*)", ["tokenGroups"], scope="BASE"))
        if not entries:
            raise self._fail(f"no object {user_dn!r} for tokenGroups")
        return [_sid(v) for v in _many(entries[0][1], "tokenGroups")]

    def deleted_since(self, since_usn: int) -> list[DeletedObject]:
        """Tombstones changed at or after ``since_usn`` (Show Deleted control; the account needs read access
        to CN=Deleted Objects, which AD grants to administrators only unless delegated)."""
        flt = f"(&(isDeleted=TRUE)(uSNChanged>={int(since_usn)}))"
        controls = [(SHOW_DELETED_OID, True, None)]
        out = []
        for _dn, attrs in self.paged_search(
            self.naming_context(), flt, ["objectSid", "objectClass", "uSNChanged"], controls=controls
        ):
            raw = _first(attrs, "objectSid")
            if raw is None:
                continue
            classes = {str(c).lower() for c in _many(attrs, "objectClass")}
            kind = "computer" if "computer" in classes else "group" if "group" in classes else "user"
            out.append(DeletedObject(sid=_sid(raw), kind=kind, usn_changed=_int(_first(attrs, "uSNChanged"))))
        return out


class InChainStrategy:
    """Production alternative: in-chain queries on the DC (no client graph; one query per user)."""

    def __init__(self, client: ADClient) -> None:
        self.client = client

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]:
        dn_by_sid = {g.sid: g.dn for g in snapshot.groups}
        out: dict[str, set[str]] = {}
        for user in snapshot.users:
            found = {_sid(_first(attrs, "objectSid")) for _dn, attrs in self.client.groups_in_chain(user.dn)}
            # the primary group is not a 'member' link, so the chain misses it and its parents: add them
            for direct in set(user.groups) - found:
                found.add(direct)
                if direct in dn_by_sid:
                    chain = self.client.groups_in_chain(dn_by_sid[direct])
                    found |= {_sid(_first(attrs, "objectSid")) for _dn, attrs in chain}
            out[user.sid] = found
        return out


class TokenGroupsStrategy:
    """Security groups exactly as a logon token sees them (builtins and primary group included)."""

    def __init__(self, client: ADClient) -> None:
        self.client = client

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]:
        return {user.sid: set(self.client.token_groups(user.dn)) for user in snapshot.users}


class ADSync:
    """Full and incremental (uSNChanged) sync of one directory; keeps the group membership seen last time.

    Membership lives on groups: ``memberOf`` is a back-link, so adding bob to a group moves the group's
    uSNChanged, not bob's. Incremental sync therefore re-reads the members that joined or left a changed
    group (exact when this object saw the previous sync; otherwise only current members are re-read).
    """

    def __init__(self, config: ADConfig, *, server: Any = None) -> None:
        self.config = config
        self._server = server
        self._members: dict[str, frozenset[str]] | None = None  # group dn key -> member dn keys
        self._dn_sid: dict[str, str] = {}  # group dn key -> objectSid

    def client(self) -> ADClient:
        return ADClient(self.config, server=self._server)

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
        self, client: ADClient, since_usn: int | None
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
                dn_sid[dn_key(dn)] = _sid(_first(attrs, "objectSid"))
            members[dn_key(dn)] = frozenset(dn_key(str(m)) for m in _many(attrs, "member"))
        if since_usn is not None:
            affected: set[str] = set()
            for key, now in members.items():
                before = None if self._members is None else self._members.get(key)
                affected |= now if before is None else now ^ before
            affected -= {dn_key(dn) for dn, _ in users} | {dn_key(dn) for dn, _ in groups}
            if affected:
                users += list(client.search_by_dns(affected, USER_FILTER, USER_ATTRS))
                groups += list(client.search_by_dns(affected, GROUP_FILTER, GROUP_ATTRS))
        wanted = {dn_key(str(p)) for _dn, attrs in users + groups for p in _many(attrs, "memberOf")}
        unknown = wanted - dn_sid.keys()
        if unknown:
            for dn, attrs in client.search_by_dns(unknown, GROUP_FILTER, ["objectSid"]):
                dn_sid[dn_key(dn)] = _sid(_first(attrs, "objectSid"))
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
        for parent in _many(attrs, "memberOf"):
            sid = dn_sid.get(dn_key(str(parent)))
            if sid is None:
                log.warning("AD: %s is a member of %s, which could not be resolved to a SID; skipped", dn, parent)
            else:
                out.append(sid)
        return out

    def _user(self, dn: str, attrs: Mapping[str, Any], dn_sid: Mapping[str, str]) -> ADUser | None:
        raw_sid, name = _first(attrs, "objectSid"), _text(_first(attrs, "sAMAccountName"))
        if raw_sid is None or name is None:
            log.warning("AD: user %s has no objectSid or sAMAccountName (not readable?); skipped", dn)
            return None
        sid = _sid(raw_sid)
        groups = sorted(set(self._parents(attrs, dn_sid, dn)))
        primary = _int(_first(attrs, "primaryGroupID"))
        if primary:  # memberOf never lists the primary group (Domain Users): add it explicitly
            primary_sid = f"{domain_sid_of(sid)}-{primary}"
            if primary_sid not in groups:
                groups.append(primary_sid)
        return ADUser(
            sid=sid,
            username=name,
            dn=dn,
            upn=_text(_first(attrs, "userPrincipalName")),
            display_name=_text(_first(attrs, "displayName")),
            mail=_text(_first(attrs, "mail")),
            groups=tuple(groups),
            enabled=not _int(_first(attrs, "userAccountControl")) & UAC_ACCOUNTDISABLE,
            usn_changed=_int(_first(attrs, "uSNChanged")),
        )

    def _group(self, dn: str, attrs: Mapping[str, Any], dn_sid: Mapping[str, str]) -> ADGroup | None:
        raw_sid = _first(attrs, "objectSid")
        name = _text(_first(attrs, "sAMAccountName")) or _text(_first(attrs, "cn"))
        if raw_sid is None or name is None:
            log.warning("AD: group %s has no objectSid or name (not readable?); skipped", dn)
            return None
        return ADGroup(
            sid=_sid(raw_sid),
            name=name,
            dn=dn,
            member_of=tuple(sorted(set(self._parents(attrs, dn_sid, dn)))),
            description=_text(_first(attrs, "description")),
        )

    @staticmethod
    def _computer(dn: str, attrs: Mapping[str, Any]) -> ADComputer | None:
        raw_sid, name = _first(attrs, "objectSid"), _text(_first(attrs, "sAMAccountName"))
        if raw_sid is None or name is None:
            log.warning("AD: computer %s has no objectSid or sAMAccountName; skipped", dn)
            return None
        return ADComputer(
            sid=_sid(raw_sid),
            name=name[:-1] if name.endswith("$") else name,
            dns_host_name=_text(_first(attrs, "dNSHostName")),
            operating_system=_text(_first(attrs, "operatingSystem")),
            usn_changed=_int(_first(attrs, "uSNChanged")),
        )


def sync_directory(config: ADConfig, since_usn: int | None = None) -> DirectorySnapshot:
    """One-shot sync without remembered state (incremental then re-reads current members of changed groups)."""
    return ADSync(config).sync(since_usn)


async def sync_directory_async(config: ADConfig, since_usn: int | None = None) -> DirectorySnapshot:
    """ldap3 blocks: run the sync in a worker thread so the event loop stays free."""
    return await asyncio.to_thread(sync_directory, config, since_usn)
