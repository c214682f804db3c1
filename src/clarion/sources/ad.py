"""Active Directory sync over LDAP (ldap3): users, groups with nesting, computers, full and incremental.

The LDAP client (the only importer of ``ldap3``) lives in :mod:`clarion.sources.ad_client`; this module builds the
sync on it. The client is synchronous (ldap3 is); call it from async code through :func:`sync_directory_async`,
which runs it in a worker thread. Semantics of incremental sync, service account rights and TLS choices are
documented in ``docs/ise-ers-and-ad.md``. Settings, value parsing and group
nesting live in :mod:`clarion.sources.ad_model`, incremental bookkeeping in :mod:`clarion.sources.ad_sync`; the
public names of all three are re-exported here. What a sync returns (:class:`~clarion.sources.model.DirectorySnapshot`
with its deletions, member lists and resume mark) is source-neutral and lives in :mod:`clarion.sources.model`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from clarion.sources.ad_client import (
    BINARY_ATTRS,
    DEFAULT_TOMBSTONE_LIFETIME_DAYS,
    DN_LOOKUP_BATCH,
    IN_CHAIN,
    SHOW_DELETED_OID,
    ADClient,
    sid_text,
)
from clarion.sources.ad_model import (
    COMPUTER_ATTRS,
    COMPUTER_FILTER,
    GROUP_ATTRS,
    GROUP_FILTER,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    UAC_ACCOUNTDISABLE,
    USER_ATTRS,
    USER_FILTER,
    ADConfig,
    ADError,
    ClientBFS,
    TransitiveStrategy,
    dn_key,
    domain_sid_of,
    first_value,
    transitive_groups,
)
from clarion.sources.ad_sync import DirectoryReader, IncrementalSync
from clarion.sources.model import DirectorySnapshot

__all__ = [
    "BINARY_ATTRS",
    "COMPUTER_ATTRS",
    "COMPUTER_FILTER",
    "DEFAULT_TOMBSTONE_LIFETIME_DAYS",
    "DN_LOOKUP_BATCH",
    "GROUP_ATTRS",
    "GROUP_FILTER",
    "IN_CHAIN",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "SHOW_DELETED_OID",
    "UAC_ACCOUNTDISABLE",
    "USER_ATTRS",
    "USER_FILTER",
    "ADClient",
    "ADConfig",
    "ADError",
    "ADSync",
    "ClientBFS",
    "DirectoryReader",
    "InChainStrategy",
    "TokenGroupsStrategy",
    "TransitiveStrategy",
    "dn_key",
    "domain_sid_of",
    "sync_directory",
    "sync_directory_async",
    "transitive_groups",
]


class InChainStrategy:
    """Production alternative: in-chain queries on the DC (no client graph; one query per user)."""

    def __init__(self, client: ADClient) -> None:
        self.client = client

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]:
        dn_by_sid = {g.sid: g.dn for g in snapshot.groups}
        out: dict[str, set[str]] = {}
        for user in snapshot.users:
            found = {sid_text(first_value(attrs, "objectSid")) for _dn, attrs in self.client.groups_in_chain(user.dn)}
            # the primary group is not a 'member' link, so the chain misses it and its parents: add them
            for direct in set(user.groups) - found:
                found.add(direct)
                if direct in dn_by_sid:
                    chain = self.client.groups_in_chain(dn_by_sid[direct])
                    found |= {sid_text(first_value(attrs, "objectSid")) for _dn, attrs in chain}
            out[user.sid] = found
        return out


class TokenGroupsStrategy:
    """Security groups exactly as a logon token sees them (builtins and primary group included)."""

    def __init__(self, client: ADClient) -> None:
        self.client = client

    def resolve(self, snapshot: DirectorySnapshot) -> dict[str, set[str]]:
        return {user.sid: set(self.client.token_groups(user.dn)) for user in snapshot.users}


class ADSync(IncrementalSync):
    """Full and incremental (uSNChanged) sync of one directory, deletions included; see :class:`IncrementalSync`.

    Keeping one ADSync between syncs lets a changed group's members be named from memory instead of re-read.
    """

    def __init__(self, config: ADConfig, *, server: Any = None) -> None:
        super().__init__(decode_sid=sid_text)
        self.config = config
        self._server = server

    def client(self) -> ADClient:
        return ADClient(self.config, server=self._server)


def sync_directory(config: ADConfig, since_usn: int | None = None) -> DirectorySnapshot:
    """One-shot sync without remembered state (incremental then reads every current member of changed groups)."""
    return ADSync(config).sync(since_usn)


async def sync_directory_async(config: ADConfig, since_usn: int | None = None) -> DirectorySnapshot:
    """ldap3 blocks: run the sync in a worker thread so the event loop stays free."""
    return await asyncio.to_thread(sync_directory, config, since_usn)
