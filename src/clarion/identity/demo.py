"""The synthetic campus's identity as Clarion's inputs: the ``/api/v1/identity`` body and an AD snapshot.

The demo posts :func:`identity_payload` like the pxGrid service would, and merges :func:`directory_snapshot`
like ``clarion ad sync`` would, so users, nested AD groups and SGT names appear next to the flows.
"""

from __future__ import annotations

from typing import Any

from clarion.sources.model import ADGroup, ADUser, DirectorySnapshot, Session
from clarion.sources.pxgrid.sink import session_to_json
from clarion.synth import Campus


def campus_sessions(campus: Campus) -> list[Session]:
    """One ISE session per device with a known MAC and user (``CORP\\user`` as ISE reports 802.1X users)."""
    groups_of = {u.username: tuple(u.groups) for u in campus.users}
    sgt_names = {s.value: s.name for s in campus.sgts}
    vlans = {d.mac: d.vlan for d in campus.devices if d.mac is not None}
    return [
        Session(
            mac=s.mac, ips=(s.ip,), username=f"CAMPUS\\{s.user}", sgt=s.sgt,
            sgt_name=sgt_names.get(s.sgt) if s.sgt is not None else None, switch_id=s.switch_id,
            interface=s.interface, vlan=vlans.get(s.mac), endpoint_profile=s.profile or None, state="STARTED",
            timestamp_ms=s.start_ms, ad_groups=groups_of.get(s.user, ()), source="ise",
        )
        for s in campus.sessions
    ]  # fmt: skip


def identity_payload(campus: Campus) -> dict[str, Any]:
    """The ``POST /api/v1/identity`` body: every session and every SGT with its name and description."""
    return {
        "sessions": [session_to_json(s) for s in campus_sessions(campus)],
        "security_groups": [{"value": s.value, "name": s.name, "description": s.description} for s in campus.sgts],
    }


def directory_snapshot(campus: Campus) -> DirectorySnapshot:
    """The campus's Active Directory as a full-sync snapshot (users, groups by SID, nesting)."""
    sid_of = {g.name: g.sid for g in campus.ad_groups}
    groups = [
        ADGroup(sid=g.sid, name=g.name, dn=g.dn, member_of=tuple(sid_of[p] for p in g.member_of if p in sid_of))
        for g in campus.ad_groups
    ]
    users = [
        ADUser(
            sid=u.sid, username=u.username, dn=u.dn, upn=u.upn, display_name=u.display_name,
            groups=tuple(sid_of[g] for g in u.groups if g in sid_of),
        )
        for u in campus.users
    ]  # fmt: skip
    return DirectorySnapshot(users=users, groups=groups, highest_usn=1)
