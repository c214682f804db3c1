"""Active Directory snapshots → users, groups, nesting and computers in the graph.

Cleanup follows the ownership rule: every AD write is stamped with a sync id; only after *every* merge
statement of a sync succeeded does the cleanup remove what AD owns and that sync did not touch. A sync that
fails (LDAP error, store error) raises before the cleanup and so deletes nothing. An incremental sync also
replaces the member lists of changed groups and applies the source's deletions (AD tombstones), again only after
all its merges. Transitive membership is never stored: queries walk
MEMBER_OF chains, so replacing a changed group's edges is what recomputes it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clarion.identity.names import normalise_username
from clarion.sources.ad import ADConfig, ADSync
from clarion.sources.model import DirectorySnapshot, SyncMark
from clarion.store.port import GraphStore

log = logging.getLogger(__name__)
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class DirectoryMergeResult:
    sync_id: str
    full: bool
    users: int
    groups: int
    memberships: int
    nesting: int
    computers: int
    seconds: float
    deleted: int = 0  # AD objects removed because AD deleted them (incremental)
    replaced_groups: int = 0  # changed groups whose member lists replaced their old edges (incremental)
    mark: SyncMark | None = None  # where the next incremental sync resumes (persist it only after success)
    full_reason: str | None = None  # why an incremental request ran as a full sync


def merge_directory(
    store: GraphStore, snapshot: DirectorySnapshot, *, now_ms: int | None = None, chunk: int = CHUNK
) -> DirectoryMergeResult:
    """Merge one directory snapshot; a full one (``since_usn is None``) then removes what it no longer has,
    an incremental one replaces its changed groups' member lists and applies its deletions."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 rows per write, got {chunk}")
    t0 = time.perf_counter()
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    sync_id = uuid.uuid4().hex
    full = snapshot.since_usn is None

    groups = {g.sid: {"sid": g.sid, "name": g.name, "dn": g.dn, "description": g.description} for g in snapshot.groups}
    nesting = {(g.sid, p): {"child": g.sid, "parent": p} for g in snapshot.groups for p in g.member_of if p != g.sid}
    users: dict[str, dict[str, object]] = {}
    members: dict[tuple[str, str], dict[str, object]] = {}
    for u in snapshot.users:
        name = normalise_username(u.username)
        if name is None:
            log.warning("AD: user %s has an unusable sAMAccountName %r; skipped", u.dn, u.username)
            continue
        users[name] = {
            "username": name, "sid": u.sid, "dn": u.dn, "upn": u.upn, "display_name": u.display_name,
            "mail": u.mail, "enabled": u.enabled,
        }  # fmt: skip
        for sid in u.groups:
            members[(name, sid)] = {"username": name, "sid": sid, "primary": u.primary_group == sid}
    replaced = [] if full else snapshot.members  # a full sync's cleanup already covers every membership
    for gm in replaced:  # a changed group's whole member list (edges of unchanged members get re-stamped)
        for member in gm.users:
            name = normalise_username(member)
            if name is not None and (name, gm.group_sid) not in members:
                members[(name, gm.group_sid)] = {"username": name, "sid": gm.group_sid, "primary": False}
        for child in gm.groups:
            if child != gm.group_sid:
                nesting[(child, gm.group_sid)] = {"child": child, "parent": gm.group_sid}
    referenced = sorted({sid for _, sid in members})

    stamp = {"sync_id": sync_id, "ts": ts}
    writes: list[tuple[str, str, Sequence[object]]] = [
        ("merge/identity_ad_groups", "groups", list(groups.values())),
        ("merge/identity_ad_groups", "nesting", list(nesting.values())),
        ("merge/identity_ad_users", "users", list(users.values())),
        ("merge/identity_ad_users", "groups", referenced),  # groups only referenced: SID placeholders
        ("merge/identity_ad_users", "members", list(members.values())),
    ]
    empty = {
        "merge/identity_ad_groups": {"groups": [], "nesting": [], **stamp},
        "merge/identity_ad_users": {"users": [], "groups": [], "members": [], **stamp},
    }
    for statement, key, rows in writes:
        _write_chunks(store, statement, empty[statement], key, rows, chunk)
    n_computers = _merge_computers(store, snapshot, stamp, chunk)

    # Every merge above succeeded (each raises otherwise): now, and only now, clean up what AD owns.
    if full:
        store.write("merge/identity_ad_cleanup_full", {"sync_id": sync_id})
    else:
        if users or groups:
            store.write(
                "merge/identity_ad_cleanup_changed",
                {"users": sorted(users), "groups": sorted(groups), "sync_id": sync_id},
            )
        if replaced:
            store.write(
                "merge/identity_ad_cleanup_members",
                {"groups": sorted({gm.group_sid for gm in replaced}), "sync_id": sync_id},
            )
    gone = [] if full else sorted({d.sid for d in snapshot.deleted})
    if gone:
        store.write("merge/identity_ad_deleted", {"sids": gone, "ts": ts})
    return DirectoryMergeResult(
        sync_id=sync_id, full=full, users=len(users), groups=len(groups), memberships=len(members),
        nesting=len(nesting), computers=n_computers, seconds=time.perf_counter() - t0, deleted=len(gone),
        replaced_groups=len(replaced), mark=snapshot.mark, full_reason=snapshot.full_reason,
    )  # fmt: skip


def _write_chunks(
    store: GraphStore, statement: str, empty: Mapping[str, object], key: str, rows: Sequence[object], chunk: int
) -> None:
    """Write ``rows`` as parameter ``key`` of ``statement``, at most ``chunk`` per write; other lists stay empty.

    Bounded writes keep one transaction (and FalkorDB's parameter text) small whatever the directory's size.
    """
    for i in range(0, len(rows), chunk):
        store.write(statement, {**empty, key: rows[i : i + chunk]})


def _merge_computers(store: GraphStore, snapshot: DirectorySnapshot, stamp: Mapping[str, object], chunk: int) -> int:
    """Computer accounts annotate the devices whose sessions named them (there is no MAC in AD to key on)."""
    if not snapshot.computers:
        return 0
    by_name: dict[str, list[str]] = {}
    for r in store.read("query/identity_hostnames", {}):
        by_name.setdefault(str(r["hostname"]), []).append(str(r["uid"]))
    rows = [
        {"uid": uid, "sid": c.sid, "dns_host_name": c.dns_host_name, "operating_system": c.operating_system}
        for c in snapshot.computers
        for uid in by_name.get(c.name.lower(), [])
    ]
    _write_chunks(store, "merge/identity_ad_computers", stamp, "computers", rows, chunk)
    return len(rows)


def sync_and_merge(
    store: GraphStore, config: ADConfig, since_usn: int | None = None, *, resume_from: SyncMark | None = None
) -> DirectoryMergeResult:
    """Read AD, then merge. An LDAP failure raises ``ADError`` before anything is written or deleted.

    With ``resume_from`` (the ``mark`` of the last successful result) the sync is incremental, deletions
    included, unless the mark is no longer valid for this DC (then it is full, and ``full_reason`` says why).
    """
    sync = ADSync(config)
    snapshot = sync.sync_from(resume_from) if resume_from is not None else sync.sync(since_usn)
    return merge_directory(store, snapshot)
