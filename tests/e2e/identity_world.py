"""The synthetic campus as the outside systems would hold it: ISE sessions and security groups for the fake pxGrid
node, users and nested groups in the real Samba AD, and what the graph must then show (computed from the campus).

Kept apart from the acceptance test so the expectations are plain functions of the campus, independent of Clarion.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ldap3  # type: ignore[import-untyped]

from clarion.synth import Campus
from clarion.synth.identity import GROUP_PARENTS
from clarion.synth.model import SynthSession, SynthUser
from clarion_edge import wire
from tests.fakes.pxgrid.data import iso
from tests.integration.samba_ad import BASE_DN, add_group, add_members, add_user

KEEP = -1  # ise_session(sgt=KEEP): the campus session's own SGT
ISE_DOMAIN = "CORP"  # ISE reports 802.1X users as DOMAIN\user; AD knows them by sAMAccountName
CAMPUS_OU = f"OU=Campus,{BASE_DN}"
USERS_OU = f"OU=Users,{CAMPUS_OU}"
GROUPS_OU = f"OU=Groups,{CAMPUS_OU}"
#: Samba's own nesting every user inherits: the primary group Domain Users is a member of BUILTIN\Users.
SAMBA_PARENTS: dict[str, tuple[str, ...]] = {**GROUP_PARENTS, "Domain Users": ("Users",), "Users": ()}


# -- ISE (the fake pxGrid node) --------------------------------------------------------------------------------
def ise_security_groups(campus: Campus) -> list[dict[str, Any]]:
    """The campus's SGTs as pxGrid's getSecurityGroups lists them (``tag`` is the SGT value)."""
    return [{"id": f"sg-{s.value}", "name": s.name, "description": s.description, "tag": s.value} for s in campus.sgts]


def ise_session(
    s: SynthSession, sgt_names: Mapping[int, str], *, ts_ms: int | None = None, sgt: int | None = KEEP
) -> dict[str, Any]:
    """One campus session as ISE's session object (the reference's §1.8 field set); ``sgt`` overrides the campus's.

    The switch is named (``networkDeviceName``) rather than addressed: the campus's switch ids are names, and the
    agents report flows under the same id. MAB sessions carry the MAC as user name, as ISE reports them.
    """
    value = s.sgt if sgt == KEEP else sgt
    mab = s.user.replace("-", ":").upper() == s.mac.upper()
    user = s.user if mab else f"{ISE_DOMAIN}\\{s.user}"
    raw: dict[str, Any] = {
        "timestamp": iso(s.start_ms if ts_ms is None else ts_ms),
        "state": "STARTED",
        "userName": user,
        "callingStationId": s.mac.upper(),
        "calledStationId": "00:11:22:33:44:55",
        "auditSessionId": "0A0000" + s.mac.replace(":", "").upper() + "0000",
        "macAddress": s.mac.upper(),
        "ipAddresses": [s.ip],
        "networkDeviceName": s.switch_id,
        "nasIdentifier": s.switch_id,
        "nasPortId": s.interface,
        "nasPortType": "Ethernet",
        "endpointProfile": s.profile or "Unknown",
        "postureStatus": "NotApplicable" if mab else "Compliant",
        "providers": ["None"],
        "serviceType": "Call Check" if mab else "Framed",
        "radiusFlowType": "WiredMAB" if mab else "Wired802_1x",
        "selectedAuthzProfiles": ["PermitAccess"],
    }
    if not mab:
        raw |= {
            "adNormalizedUser": s.user,
            "adUserDomainName": "corp.local",
            "adUserNetBiosName": ISE_DOMAIN,
            "adUserSamAccountName": s.user,
        }
    if value is not None:
        raw["ctsSecurityGroup"] = sgt_names[value]
    return raw


# -- Active Directory (the real Samba DC) ------------------------------------------------------------------------
def seed_directory(conn: ldap3.Connection, campus: Campus) -> None:
    """The campus's users and groups (with nesting) under OU=Campus, in bulk LDAP adds.

    Domain Users is Samba's own group: every new user is already in it (primaryGroupID 513), so it is not re-added.
    """
    conn.add(CAMPUS_OU, ["top", "organizationalUnit"])
    conn.add(USERS_OU, ["top", "organizationalUnit"])
    conn.add(GROUPS_OU, ["top", "organizationalUnit"])
    user_dns = {
        u.username: add_user(conn, u.username, display_name=u.display_name, container=USERS_OU) for u in campus.users
    }
    own = [g for g in campus.ad_groups if g.name != "Domain Users"]
    group_dns = {g.name: add_group(conn, g.name, container=GROUPS_OU) for g in own}
    members: dict[str, list[str]] = defaultdict(list)
    for u in campus.users:
        for g in u.groups:
            if g in group_dns:
                members[g].append(user_dns[u.username])
    for group in own:
        for parent in group.member_of:
            members[parent].append(group_dns[group.name])
    for name, member_dns in members.items():
        add_members(conn, group_dns[name], member_dns)


def expected_groups(user: SynthUser) -> dict[str, tuple[str, int]]:
    """Group name -> (via, depth) as AD resolves it: breadth first from the user's direct groups."""
    out: dict[str, tuple[str, int]] = {}
    frontier, depth = list(user.groups), 1
    while frontier:
        nxt: list[str] = []
        for g in frontier:
            if g not in out:
                out[g] = ("DIRECT" if depth == 1 else "NESTED", depth)
                nxt.extend(SAMBA_PARENTS[g])
        frontier, depth = nxt, depth + 1
    return out


def samba_started_by_this_process() -> bool:
    """True when a samba child of this pytest process runs (another module's session fixture started it)."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name == "samba" and rest[1] == me:
            return True
    return False


# -- what the graph must show ------------------------------------------------------------------------------------
def netflow_sgts(graphs: Iterable[wire.EdgeGraph]) -> dict[str, int]:
    """uid -> the SGT the switches exported for it; a node exported with two different SGTs is a campus error."""
    out: dict[str, int] = {}
    for g in graphs:
        for node in g.nodes:
            if isinstance(node, wire.Device | wire.IpEndpoint) and node.sgt is not None:
                uid = node.mac if isinstance(node, wire.Device) else node.ip
                if out.setdefault(uid, node.sgt) != node.sgt:
                    raise AssertionError(f"{uid} exported with SGT {out[uid]} and {node.sgt}")
    return out


def flow_totals(graphs: Iterable[wire.EdgeGraph]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Bytes per (src uid, dst uid) pair and bytes sent per uid, over every FLOWS_TO edge the agents sent."""
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    sent: dict[str, int] = defaultdict(int)
    for g in graphs:
        for e in g.edges:
            if isinstance(e, wire.FlowsTo):
                pairs[(e.src, e.dst)] += e.bytes
                sent[e.src] += e.bytes
    return pairs, sent


def expected_matrix(pairs: Mapping[tuple[str, str], int], sgt_of: Mapping[str, int]) -> dict[tuple[int, int], int]:
    """SGT x SGT bytes: every flow counted under its endpoints' current SGTs (0 when a device has none)."""
    cells: dict[tuple[int, int], int] = defaultdict(int)
    for (src, dst), n in pairs.items():
        cells[(sgt_of.get(src, 0), sgt_of.get(dst, 0))] += n
    return dict(cells)
