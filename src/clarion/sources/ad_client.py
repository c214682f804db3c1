"""The LDAP side of the AD sync: one bound ldap3 connection to one DC, paged searches, root DSE, tombstones.

This is the only module that imports ``ldap3``; :mod:`clarion.sources.ad` builds the sync on top of it and
re-exports these names. Every ldap3 or socket failure leaves here as :class:`ADError` naming the DC's URL.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import ldap3  # type: ignore[import-untyped]
from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]
from ldap3.protocol.formatters.formatters import format_sid  # type: ignore[import-untyped]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]

from clarion.sources.ad_model import (
    GROUP_FILTER,
    ADConfig,
    ADError,
    all_values,
    first_value,
    guid_text,
    int_value,
    text_value,
)
from clarion.sources.model import DeletedObject

log = logging.getLogger("clarion.sources.ad")  # one logger for the whole AD sync, as ad_sync.py does

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
SHOW_DELETED_OID = "1.2.840.113556.1.4.417"
DN_LOOKUP_BATCH = 50
BINARY_ATTRS = ("objectSid", "tokenGroups", "objectGUID", "invocationId")
DEFAULT_TOMBSTONE_LIFETIME_DAYS = 60  # what AD assumes when tombstoneLifetime is not set (MS-ADTS 6.1.1.4.1.1)


def sid_text(value: Any) -> str:
    """objectSid as ``S-1-...`` whether ldap3 formatted it (schema loaded) or handed us raw bytes."""
    if isinstance(value, bytes):
        return str(format_sid(value))
    if isinstance(value, str) and value.startswith("S-1-"):
        return value
    raise ValueError(f"objectSid is not a SID: {value!r}")


class ADClient:
    """One bound LDAP connection to one DC; every failure is re-raised as :class:`ADError` naming the URL."""

    def __init__(self, config: ADConfig, *, server: Any = None) -> None:
        self.config = config
        self._server = server  # tests inject an ldap3 MOCK server; None means a real one from config.url
        self._conn: Any = None
        self._naming_context: str | None = None
        self._deleted_readable: bool | None = None

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
            value = text_value(first_value(self.root_dse(["defaultNamingContext"]), "defaultNamingContext"))
            if not value:
                if not self.config.base_dn:
                    raise self._fail("server has no defaultNamingContext; set base_dn")
                value = self.config.base_dn
            self._naming_context = value
        return self._naming_context

    def base_dn(self) -> str:
        return self.config.base_dn or self.naming_context()

    def highest_committed_usn(self) -> int:
        return int_value(first_value(self.root_dse(["highestCommittedUSN"]), "highestCommittedUSN"))

    def paged_search(
        self,
        base: str,
        search_filter: str,
        attributes: Iterable[str],
        *,
        scope: str = "SUBTREE",
        controls: list[Any] | None = None,
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
        return [sid_text(v) for v in all_values(entries[0][1], "tokenGroups")]

    def deleted_since(self, since_usn: int) -> list[DeletedObject]:
        """Tombstones changed at or after ``since_usn`` (Show Deleted control; the account needs read access
        to CN=Deleted Objects, which AD grants to administrators only unless delegated)."""
        flt = f"(&(isDeleted=TRUE)(uSNChanged>={int(since_usn)}))"
        controls = self._show_deleted()
        out = []
        for dn, attrs in self.paged_search(
            self.naming_context(), flt, ["objectSid", "objectGUID", "objectClass", "uSNChanged"], controls=controls
        ):
            raw = first_value(attrs, "objectSid")
            if raw is None:  # not a security principal (an OU, a contact): nothing in the graph is keyed on it
                log.debug("AD: tombstone %s has no objectSid; ignored", dn)
                continue
            classes = {str(c).lower() for c in all_values(attrs, "objectClass")}
            kind = "computer" if "computer" in classes else "group" if "group" in classes else "user"
            guid = first_value(attrs, "objectGUID")
            out.append(
                DeletedObject(
                    sid=sid_text(raw),
                    kind=kind,
                    usn_changed=int_value(first_value(attrs, "uSNChanged")),
                    guid=guid_text(guid) if guid is not None else None,
                )
            )
        return out

    def _show_deleted(self) -> list[Any] | None:
        """The Show Deleted control; ldap3's MOCK cannot decode a control without a value (nor hides tombstones)."""
        return None if self._server is not None else [(SHOW_DELETED_OID, True, None)]

    def can_read_deleted(self) -> bool:
        """Whether this account sees tombstones: AD shows CN=Deleted Objects to others, but without attributes."""
        if self._deleted_readable is None:
            base = f"CN=Deleted Objects,{self.naming_context()}"
            entries = list(
                self.paged_search(base, "(objectClass=*)", ["isDeleted"], scope="BASE", controls=self._show_deleted())
            )
            self._deleted_readable = bool(entries) and str(first_value(entries[0][1], "isDeleted")).upper() == "TRUE"
        return self._deleted_readable

    def invocation_id(self) -> str | None:
        """The DC database's invocationId: it changes on restore, and USNs of another incarnation do not compare."""
        service = text_value(first_value(self.root_dse(["dsServiceName"]), "dsServiceName"))
        if not service:
            return None
        entries = list(self.paged_search(service, "(objectClass=*)", ["invocationId"], scope="BASE"))
        raw = first_value(entries[0][1], "invocationId") if entries else None
        return guid_text(raw) if raw is not None else None

    def deleted_lifetime_days(self) -> int:
        """How long tombstones (or recycle-bin deleted objects) stay visible: the horizon of an incremental sync."""
        config_nc = text_value(first_value(self.root_dse(["configurationNamingContext"]), "configurationNamingContext"))
        if not config_nc:
            return DEFAULT_TOMBSTONE_LIFETIME_DAYS
        base = f"CN=Directory Service,CN=Windows NT,CN=Services,{config_nc}"
        attrs = ["tombstoneLifetime", "msDS-DeletedObjectLifetime"]
        entries = list(self.paged_search(base, "(objectClass=*)", attrs, scope="BASE"))
        found = entries[0][1] if entries else {}
        days = [int_value(first_value(found, name)) for name in attrs if first_value(found, name) not in (None, "")]
        return min(days) if days else DEFAULT_TOMBSTONE_LIFETIME_DAYS
