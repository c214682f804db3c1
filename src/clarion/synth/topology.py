"""Switches, devices and who uses them: the layout flows are generated over.

Servers sit on data-centre switches (many VMs behind one hypervisor port); clients are spread
over access switches, IP phones share a port with the PC behind them, Wi-Fi clients sit behind
access-point ports. Addresses are grouped per VLAN and per switch as a real campus does.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from clarion.synth import identity
from clarion.synth.behaviours import DB_PORT_WEIGHTS, DB_PORTS
from clarion.synth.model import CampusSpec, SynthDevice, SynthGroup, SynthSession, SynthSwitch, SynthUser
from clarion.synth.roles import ROLE_INDEX, ROLES, SECONDARY, SGT_BY_NAME, VLAN_BASES, WIFI_VLAN

HOUR_MS = 3_600_000


@dataclass
class Layout:
    switches: list[SynthSwitch]
    devices: list[SynthDevice]
    role_idx: np.ndarray  # int16 per device
    second_idx: np.ndarray  # int16 per device: the role of a second job it does, or -1
    switch_idx: np.ndarray  # int32 per device
    db_port: np.ndarray  # uint16 per device, the engine port of database servers (0 otherwise)
    expected_sgt: np.ndarray  # int32 per device, the SGT its role and user call for
    users: list[SynthUser]
    groups: list[SynthGroup]
    sessions: list[SynthSession]
    mab_sessions: list[SynthSession]


def role_counts(n: int) -> np.ndarray:
    """Devices per role by largest remainder, so counts sum to ``n`` exactly."""
    shares = np.array([r.share for r in ROLES])
    raw = shares * n
    counts: np.ndarray = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    return counts


def make_switches(spec: CampusSpec, rng: np.random.Generator) -> list[SynthSwitch]:
    n = spec.switches
    n_dc = 0 if n == 1 else max(1, n // 8)
    exports = rng.random(n) < 0.8
    switches = []
    for i in range(n):
        mgmt = f"10.255.{i // 250}.{i % 250 + 1}"
        if i < n_dc:
            switches.append(SynthSwitch(f"sw-dc-{i + 1:02d}", f"dc-core-{i + 1}", mgmt, True, True))
            continue
        k = i - n_dc
        name = f"bldg{k // 4 + 1}-floor{k % 4 + 1}"
        export = bool(exports[i]) or (n - n_dc >= 4 and k == 0)
        if n - n_dc >= 4 and k == n - n_dc - 1:
            export = False  # a campus of some size always has an old switch that exports no SGT
        switches.append(SynthSwitch(f"sw-acc-{k + 1:03d}", name, mgmt, export, n == 1))
    return switches


def build_layout(spec: CampusSpec, rng: np.random.Generator) -> Layout:
    """Place every device, give it addresses, a user where it has one, and a current SGT."""
    n = spec.devices
    switches = make_switches(spec, rng)
    counts = role_counts(n)
    role_idx = rng.permutation(np.repeat(np.arange(len(ROLES), dtype=np.int16), counts))

    dc_sw = [i for i, s in enumerate(switches) if s.datacenter and s.switch_id.startswith("sw-dc-")] or [0]
    acc_sw = [i for i, s in enumerate(switches) if not s.switch_id.startswith("sw-dc-")] or [0]
    in_dc = np.array([r.datacenter for r in ROLES])[role_idx]
    acc_weights = rng.dirichlet(np.full(len(acc_sw), 4.0))
    switch_idx = np.where(
        in_dc,
        np.asarray(dc_sw)[rng.integers(0, len(dc_sw), size=n)],
        np.asarray(acc_sw)[rng.choice(len(acc_sw), size=n, p=acc_weights)],
    ).astype(np.int32)

    dom_sid = identity.domain_sid(rng)
    groups = identity.make_groups(dom_sid)
    users, user_of = _assign_users(role_idx, rng, dom_sid)
    expected = _expected_sgts(role_idx, users, user_of)
    current = _current_sgts(spec, role_idx, expected, rng)

    second = np.array([ROLE_INDEX[SECONDARY[r.name][0]] if r.name in SECONDARY else -1 for r in ROLES])
    second_p = np.array([SECONDARY[r.name][1] if r.name in SECONDARY else 0.0 for r in ROLES])
    second_idx = np.where(rng.random(n) < second_p[role_idx], second[role_idx], -1).astype(np.int16)

    db_port = np.zeros(n, dtype=np.uint16)
    is_db = (role_idx == ROLE_INDEX["db_server"]) | (second_idx == ROLE_INDEX["db_server"])
    db_port[is_db] = rng.choice(np.array(DB_PORTS), size=int(is_db.sum()), p=np.array(DB_PORT_WEIGHTS))

    can_ip_only = np.array([r.can_be_ip_only for r in ROLES])[role_idx]
    ip_only = can_ip_only & (rng.random(n) < spec.ip_only_share)
    wifi = rng.random(n) < np.array([r.wifi for r in ROLES])[role_idx]
    profiles = _pick_profiles(role_idx, rng)
    mac_salt = int(rng.integers(0, 1 << 24))
    oui_pick = rng.integers(0, 1 << 16, size=n)

    interfaces, vlans, ips = _wire_ports(role_idx, switch_idx, wifi, len(switches))
    devices = []
    rows = zip(
        role_idx.tolist(), switch_idx.tolist(), ip_only.tolist(), oui_pick.tolist(), user_of.tolist(), current.tolist(),
        strict=True,
    )  # fmt: skip
    for i, (r, sw, no_mac, oui_k, uidx, sgt) in enumerate(rows):
        role = ROLES[r]
        mac = None
        if not no_mac:
            low = (i * 0x9E3779 + mac_salt) & 0xFFFFFF
            mac = f"{role.ouis[oui_k % len(role.ouis)]}:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"
        devices.append(
            SynthDevice(
                index=i,
                mac=mac,
                ip=ips[i],
                role=role.name,
                switch_id=switches[sw].switch_id,
                interface=interfaces[i],
                vlan=vlans[i],
                sgt=None if sgt < 0 else sgt,
                user=users[uidx].username if uidx >= 0 else None,
                profile=profiles[i],
            )
        )
    sessions, mab_sessions = _sessions(spec, devices, rng)
    return Layout(
        switches, devices, role_idx, second_idx, switch_idx, db_port, expected, users, groups, sessions, mab_sessions
    )


def _pick_profiles(role_idx: np.ndarray, rng: np.random.Generator) -> list[str]:
    """ISE-like endpoint profile of each device, drawn from its role's mix (some "Unknown")."""
    names: list[str] = []
    offsets = []
    for role in ROLES:
        offsets.append(len(names))
        names.extend(name for name, _ in role.profiles)
    picks = np.zeros(len(role_idx), dtype=np.int64)
    u = rng.random(len(role_idx))
    for r, role in enumerate(ROLES):
        mask = role_idx == r
        weights = np.array([w for _, w in role.profiles])
        cum = np.cumsum(weights / weights.sum())
        picks[mask] = offsets[r] + np.minimum(np.searchsorted(cum, u[mask], side="right"), len(weights) - 1)
    return [names[k] for k in picks.tolist()]


def _assign_users(role_idx: np.ndarray, rng: np.random.Generator, dom_sid: str) -> tuple[list[SynthUser], np.ndarray]:
    """Users for workstations, laptops, smartphones and jump hosts (index per device, -1 for none)."""
    n = len(role_idx)
    primary = np.flatnonzero((role_idx == ROLE_INDEX["workstation"]) | (role_idx == ROLE_INDEX["laptop"]))
    n_users = max(1, round(0.85 * len(primary)))
    users = identity.make_users(n_users, rng, dom_sid)
    user_of = np.full(n, -1, dtype=np.int64)
    owners = rng.permutation(n_users)
    first = min(len(primary), n_users)
    user_of[primary[:first]] = owners[:first]
    user_of[primary[first:]] = rng.integers(0, n_users, size=len(primary) - first)
    shared = primary[rng.random(len(primary)) < 0.05]
    user_of[shared[role_idx[shared] == ROLE_INDEX["workstation"]]] = -1  # kiosks and shared PCs
    phones = np.flatnonzero(role_idx == ROLE_INDEX["smartphone"])
    guests = rng.random(len(phones)) < 0.25
    user_of[phones] = np.where(guests, -1, rng.integers(0, n_users, size=len(phones)))
    admins = np.array([i for i, u in enumerate(users) if "IT-Admins" in u.groups]) if users else np.array([])
    jumps = np.flatnonzero(role_idx == ROLE_INDEX["jump_host"])
    pool = admins if len(admins) else np.arange(n_users)
    user_of[jumps] = pool[rng.integers(0, len(pool), size=len(jumps))]
    return users, user_of


def _expected_sgts(role_idx: np.ndarray, users: list[SynthUser], user_of: np.ndarray) -> np.ndarray:
    """The SGT a well-run ISE would give: by role, and by the user's groups on personal devices."""
    expected: np.ndarray = np.array([SGT_BY_NAME[r.sgt] for r in ROLES], dtype=np.int32)[role_idx]
    user_sgt = np.array(
        [
            SGT_BY_NAME["Contractors"]
            if "Contractors" in u.groups
            else SGT_BY_NAME["Developers"]
            if u.department == "Engineering"
            else SGT_BY_NAME["Employees"]
            for u in users
        ],
        dtype=np.int32,
    )
    pcs = ((role_idx == ROLE_INDEX["workstation"]) | (role_idx == ROLE_INDEX["laptop"])) & (user_of >= 0)
    expected[pcs] = user_sgt[user_of[pcs]]
    guests = (role_idx == ROLE_INDEX["smartphone"]) & (user_of < 0)
    expected[guests] = SGT_BY_NAME["Guests"]
    return expected


#: The mistakes a real deployment makes: a catch-all tag, or the tag of a look-alike device class.
_WRONG_GENERIC_CLIENT = ("Unknown", "Employees", "TrustSec_Devices", "IoT_Devices")
_WRONG_GENERIC_SERVER = ("Unknown", "Production_Servers", "Development_Servers", "Test_Servers")


def _current_sgts(spec: CampusSpec, role_idx: np.ndarray, expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Expected SGTs with noise: some missing (-1), some wrong (a catch-all or another role's SGT)."""
    n = len(expected)
    u = rng.random(n)
    server = np.array([r.datacenter for r in ROLES])[role_idx]
    client_generic = np.array([SGT_BY_NAME[x] for x in _WRONG_GENERIC_CLIENT], dtype=np.int32)
    server_generic = np.array([SGT_BY_NAME[x] for x in _WRONG_GENERIC_SERVER], dtype=np.int32)
    by_role = np.array([SGT_BY_NAME[r.sgt] for r in ROLES], dtype=np.int32)
    pick = rng.integers(0, 1 << 30, size=n)
    generic = np.where(server, server_generic[pick % 4], client_generic[pick % 4])
    other_role = by_role[pick % len(ROLES)]
    wrong = np.where(rng.random(n) < 0.5, generic, other_role)
    wrong = np.where(wrong == expected, SGT_BY_NAME["Unknown"], wrong)
    current = expected.copy()
    current[u < spec.missing_sgt_share] = -1
    is_wrong = (u >= spec.missing_sgt_share) & (u < spec.missing_sgt_share + spec.wrong_sgt_share)
    current[is_wrong] = wrong[is_wrong]
    return current


def _wire_ports(
    role_idx: np.ndarray, switch_idx: np.ndarray, wifi: np.ndarray, n_switches: int
) -> tuple[list[str], list[int], list[str]]:
    """Interface, VLAN and IP of every device, allocated switch by switch."""
    n = len(role_idx)
    interfaces = [""] * n
    vlans = [0] * n
    ips = [""] * n
    vlan_next: dict[int, int] = {}
    phone = ROLE_INDEX["ip_phone"]
    order = np.lexsort((role_idx == phone, switch_idx))  # per switch, phones after the PCs they sit behind
    wired = [0] * n_switches
    aps = [0] * n_switches
    vms = [0] * n_switches
    free_pc_ports: dict[int, list[str]] = {}
    bases = {vlan: int(ipaddress.IPv4Address(base)) for vlan, base in VLAN_BASES.items()}
    roles, switch_of, wifi_of = role_idx.tolist(), switch_idx.tolist(), wifi.tolist()
    for i in order.tolist():
        role = ROLES[roles[i]]
        sw = switch_of[i]
        vlan = WIFI_VLAN if wifi_of[i] else role.vlan
        if role.datacenter:
            port = vms[sw] // 8  # eight VMs per hypervisor uplink
            vms[sw] += 1
            iface = f"TenGigabitEthernet{port // 48 + 1}/0/{port % 48 + 1}"
        elif wifi_of[i]:
            ap = aps[sw] // 20  # twenty clients per access point
            aps[sw] += 1
            iface = f"TwoGigabitEthernet{ap // 12 + 1}/0/{ap % 12 + 37}"
        elif role.name == "ip_phone" and free_pc_ports.get(sw) and (i % 5 != 0):
            iface = free_pc_ports[sw].pop()
        else:
            port = wired[sw]
            wired[sw] += 1
            iface = f"GigabitEthernet{port // 36 + 1}/0/{port % 36 + 1}"
            if role.name == "workstation":
                free_pc_ports.setdefault(sw, []).append(iface)
        host = vlan_next.get(vlan, 0)
        vlan_next[vlan] = host + 1
        addr = bases[vlan] + (host // 250) * 256 + host % 250 + 2
        ips[i] = f"{addr >> 24}.{(addr >> 16) & 0xFF}.{(addr >> 8) & 0xFF}.{addr & 0xFF}"
        interfaces[i] = iface
        vlans[i] = vlan
    return interfaces, vlans, ips


def _sessions(
    spec: CampusSpec, devices: list[SynthDevice], rng: np.random.Generator
) -> tuple[list[SynthSession], list[SynthSession]]:
    """ISE-like sessions: 802.1X ones for devices with a user (starting in the morning of day one),
    and MAB ones (the MAC as user name, as ISE reports them) for the other access devices with a MAC."""
    starts = (spec.start_ms + 7 * HOUR_MS + rng.integers(0, 3 * HOUR_MS, size=len(devices))).tolist()
    early = (spec.start_ms + rng.integers(0, HOUR_MS, size=len(devices))).tolist()
    dot1x, mab = [], []
    for d in devices:
        if d.mac is None or ROLES[ROLE_INDEX[d.role]].datacenter:
            continue  # servers get their SGT from static IP mappings, not from ISE sessions
        if d.user is not None:
            dot1x.append(SynthSession(d.mac, d.ip, d.user, d.sgt, d.switch_id, d.interface, starts[d.index], d.profile))
        else:
            user = d.mac.upper()
            mab.append(SynthSession(d.mac, d.ip, user, d.sgt, d.switch_id, d.interface, early[d.index], d.profile))
    return dot1x, mab
