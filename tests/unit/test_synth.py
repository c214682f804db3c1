"""The synthetic campus: deterministic, sized as asked, realistic enough that clustering on it means something."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from clarion.synth import DEFAULT_START_MS, Campus, CampusSpec, generate_campus
from clarion.synth.identity import all_groups_of
from clarion.synth.profiles import BEHAVIOURS

DAY_MS = 86_400_000
TCP, UDP = 6, 17


@pytest.fixture(scope="module")
def campus() -> Campus:
    return generate_campus(CampusSpec(seed=7, switches=8, devices=2_000, remote_hosts=200))


def _digests(c: Campus) -> list[str]:
    return [g.digest or "" for g in c.edge_graphs()]


def _rows_of(c: Campus, role: str, as_client: bool = True) -> np.ndarray:
    idx = np.array([d.index for d in c.devices if d.role == role])
    col = c.flows["src"] if as_client else c.flows["dst"]
    return c.flows[np.isin(col, idx)]


def _service_share(c: Campus, role: str) -> Counter[tuple[int, int]]:
    rows = _rows_of(c, role)
    return Counter(zip(rows["protocol"].tolist(), rows["port"].tolist(), strict=True))


# --- determinism and sizes -------------------------------------------------------------------


def test_same_seed_gives_identical_flows_and_graphs() -> None:
    spec = CampusSpec(seed=11, switches=4, devices=600, remote_hosts=50)
    a, b = generate_campus(spec), generate_campus(spec)
    assert np.array_equal(a.flows, b.flows)
    assert list(a.devices) == list(b.devices)
    assert a.users == b.users
    assert a.sessions == b.sessions
    assert a.remote_hosts == b.remote_hosts
    assert _digests(a) == _digests(b)


def test_other_seed_gives_other_campus() -> None:
    a = generate_campus(CampusSpec(seed=11, switches=4, devices=600, remote_hosts=50))
    b = generate_campus(CampusSpec(seed=12, switches=4, devices=600, remote_hosts=50))
    assert not np.array_equal(a.flows, b.flows)
    assert set(_digests(a)).isdisjoint(_digests(b))


def test_sizes_are_honoured(campus: Campus) -> None:
    spec = campus.spec
    assert len(campus.devices) == 2_000
    assert len(campus.switches) == 8
    assert len(campus.remote_hosts) == len(set(campus.remote_hosts)) == 200
    assert len(campus.flows) == 2_000 * 40 == campus.stats()["flow_rows"]
    assert [d.index for d in campus.devices] == list(range(2_000))
    f = campus.flows
    assert f["src"].min() >= -200
    assert f["src"].max() < 2_000
    assert f["dst"].min() >= -200
    assert f["dst"].max() < 2_000
    assert not np.any((f["src"] < 0) & (f["dst"] < 0)), "a flow between two remote hosts is not seen on campus"
    assert not np.any(f["src"] == f["dst"])
    assert f["first_ms"].min() >= DEFAULT_START_MS
    assert f["last_ms"].max() < DEFAULT_START_MS + DAY_MS
    assert np.all(f["last_ms"] >= f["first_ms"])
    window = (f["first_ms"] - spec.start_ms) // spec.window_ms
    assert np.array_equal(window, (f["last_ms"] - spec.start_ms) // spec.window_ms), "a row stays in its window"
    assert np.all(f["packets"] >= f["flows"])
    assert np.all(f["bytes"] >= 40 * f["packets"])
    assert np.all(np.diff(f["first_ms"]) >= 0)


def test_days_and_windows_scale_rows() -> None:
    c = generate_campus(CampusSpec(seed=3, switches=2, devices=300, remote_hosts=20, days=3, window_ms=900_000))
    assert len(c.flows) == 300 * 40 * 3
    assert c.flows["last_ms"].max() < DEFAULT_START_MS + 3 * DAY_MS
    assert len(list(c.edge_graphs())) == 3 * 96 * 2


def test_generating_two_thousand_devices_takes_under_a_second_of_cpu() -> None:
    start = time.process_time()
    generate_campus(CampusSpec(seed=5, devices=2_000))
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("devices", 0), ("devices", 10**7), ("switches", 0), ("remote_hosts", 0), ("days", 40), ("window_ms", 1_000),
     ("flows_per_device_per_day", 0), ("noise", 0.9), ("seed", -1), ("devices", 2.5)],
)  # fmt: skip
def test_bad_spec_is_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"CampusSpec.{field}=.*accepted"):
        CampusSpec(**{field: value})  # type: ignore[arg-type]


def test_too_many_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="flow rows"):
        CampusSpec(devices=200_000, flows_per_device_per_day=500, days=10)


# --- roles and realism ----------------------------------------------------------------------


def test_every_role_is_present_at_two_thousand_devices(campus: Campus) -> None:
    counts = Counter(d.role for d in campus.devices)
    assert set(counts) == set(campus.roles)
    assert len(campus.roles) >= 21
    assert counts["workstation"] > counts["printer"] > counts["web_server"] > 0
    for role in campus.roles:
        assert len(_rows_of(campus, role)) + len(_rows_of(campus, role, as_client=False)) > 0, role


def test_every_role_has_at_least_twenty_devices_at_five_thousand() -> None:
    c = generate_campus(CampusSpec(seed=1, devices=5_000))
    counts = Counter(d.role for d in c.devices)
    assert min(counts[r] for r in c.roles) >= 20, counts


def test_laptops_and_smartphones_share_most_of_their_services(campus: Campus) -> None:
    laptop, phone = _service_share(campus, "laptop"), _service_share(campus, "smartphone")
    shared = sum(n for svc, n in phone.items() if svc in laptop)
    assert shared / sum(phone.values()) > 0.8
    assert (TCP, 443) in laptop
    assert (TCP, 443) in phone


def test_smartphones_keep_one_push_channel_and_never_speak_to_domain_services(campus: Campus) -> None:
    domain_ports = [445, 88, 389, 636, 3268]
    assert not [u for u in BEHAVIOURS["smartphone"] if u.port in domain_ports]
    phones = [d.index for d in campus.devices if d.role == "smartphone"]
    rows = _rows_of(campus, "smartphone")
    tcp = rows[rows["protocol"] == TCP]
    assert np.count_nonzero(np.isin(tcp["port"], domain_ports)) <= 0.001 * len(rows)  # stray rows only
    apns = set(tcp["src"][tcp["port"] == 5223].tolist())
    fcm = set(tcp["src"][tcp["port"] == 5228].tolist())
    assert apns.isdisjoint(fcm)
    busy = {i for i in phones if np.count_nonzero(campus.flows["src"] == i) >= 10}
    assert busy <= apns | fcm
    assert 0.35 < len(apns & busy) / len(busy) < 0.75


def test_laptops_sleep_at_night_and_desktops_work_overnight(campus: Campus) -> None:
    def night_share(role: str) -> float:
        rows = _rows_of(campus, role)
        hour = (rows["first_ms"] // 3_600_000) % 24
        return float(np.mean((hour < 6) | (hour >= 21)))

    # Only the campus's random stray rows (3 % of all, at any hour) reach laptops and phones at night.
    assert night_share("laptop") < 0.01
    assert night_share("smartphone") < 0.01
    assert night_share("workstation") > 0.03
    desk = _rows_of(campus, "workstation")
    backups = desk[(desk["port"] == 8400) & (desk["protocol"] == TCP)]
    # Near-universal, but a device with fewer rows than behaviours shows only its heaviest ones.
    assert len(set(backups["src"].tolist())) > 0.7 * sum(d.role == "workstation" for d in campus.devices)
    lap = _rows_of(campus, "laptop")
    teams = lap[(lap["protocol"] == UDP) & (lap["port"] >= 3478) & (lap["port"] <= 3481)]
    assert len(set(teams["src"].tolist())) > 0.8 * sum(d.role == "laptop" for d in campus.devices)


def test_phones_and_video_endpoints_share_sip_and_rtp(campus: Campus) -> None:
    for role in ("ip_phone", "video_endpoint"):
        services = _service_share(campus, role)
        assert services[(TCP, 5061)] > 0, role
        rtp = sum(n for (proto, port), n in services.items() if proto == UDP and 16384 <= port <= 32767)
        assert rtp > 0, role


def test_some_but_not_all_printers_scan_to_smb_folders(campus: Campus) -> None:
    printers = [d.index for d in campus.devices if d.role == "printer"]
    rows = _rows_of(campus, "printer")
    smb = set(rows["src"][(rows["port"] == 445) & (rows["protocol"] == TCP)].tolist())
    assert 0.1 < len(smb) / len(printers) < 0.7


def test_servers_also_browse_and_cameras_stream_to_recorders(campus: Campus) -> None:
    web = _rows_of(campus, "web_server")
    assert np.count_nonzero((web["dst"] < 0) & (web["port"] == 443)) > 0
    nvrs = {d.index for d in campus.devices if d.role == "nvr"}
    to_cameras = _rows_of(campus, "ip_camera", as_client=False)
    rtsp = to_cameras[to_cameras["port"] == 554]
    assert len(rtsp) > 0
    assert set(rtsp["src"].tolist()) <= nvrs
    assert np.median(rtsp["bytes"]) > 100 * np.median(campus.flows["bytes"])


def test_servers_sit_in_the_data_centre_and_clients_on_access_switches(campus: Campus) -> None:
    dc = {s.switch_id for s in campus.switches if s.datacenter}
    for d in campus.devices:
        is_server = d.role.endswith("_server") or d.role in ("domain_controller", "nvr", "call_manager")
        assert (d.switch_id in dc) == is_server, d


def test_noise_ip_only_missing_and_wrong_sgts_and_quiet_devices(campus: Campus) -> None:
    ip_only = [d for d in campus.devices if d.mac is None]
    assert 10 <= len(ip_only) <= 100
    missing = [d for d in campus.devices if d.sgt is None]
    wrong = [d for d in campus.devices if d.sgt is not None and d.sgt != campus.expected_sgt(d.ip)]
    assert 50 <= len(missing) <= 200
    assert 40 <= len(wrong) <= 200
    rows_per_device = np.bincount(
        np.concatenate([campus.flows["src"][campus.flows["src"] >= 0]]), minlength=len(campus.devices)
    )
    assert np.count_nonzero(rows_per_device <= 2) >= 20
    assert rows_per_device.max() > 10 * np.median(rows_per_device), "activity is heavy-tailed"
    odd_ports = campus.flows[(campus.flows["port"] >= 1024) & (campus.flows["port"] < 16384)]
    assert len(odd_ports) > 0


def test_true_role_and_expected_sgt_lookups(campus: Campus) -> None:
    d = next(d for d in campus.devices if d.mac is not None and d.role == "printer")
    assert d.mac is not None
    assert campus.true_role(d.mac.upper().replace(":", "-")) == "printer"
    assert campus.true_role(d.ip) == "printer"
    assert campus.expected_sgt(d.mac) == 16
    with pytest.raises(KeyError, match="no device"):
        campus.true_role("198.18.255.254")
    with pytest.raises(KeyError, match="neither a MAC nor an IP"):
        campus.true_role("printer")


# --- identity -------------------------------------------------------------------------------


def test_users_groups_and_sessions_are_consistent(campus: Campus) -> None:
    names = [u.username for u in campus.users]
    assert len(names) == len(set(names)) > 100
    groups = {g.name: g for g in campus.ad_groups}
    assert groups["Team-A"].member_of == ("Engineering",)
    assert groups["Engineering"].member_of == ("Staff",)
    assert all(p in groups for g in campus.ad_groups for p in g.member_of)
    assert len({g.sid for g in campus.ad_groups}) == len(groups)
    team_a = next(u for u in campus.users if "Team-A" in u.groups)
    assert {"Team-A", "Engineering", "Staff", "Domain Users"} <= all_groups_of(team_a)
    users = set(names)
    by_mac = {d.mac: d for d in campus.devices if d.mac}
    assert len(campus.sessions) > 500
    for s in campus.sessions:
        d = by_mac[s.mac]
        assert s.user in users
        assert s.user == d.user
        assert s.ip == d.ip
        assert s.sgt == d.sgt
        assert (s.switch_id, s.interface) == (d.switch_id, d.interface)
    personal = Counter(d.role for d in campus.devices if d.user)
    assert set(personal) == {"workstation", "laptop", "smartphone", "jump_host"}
    admins = {u.username for u in campus.users if "IT-Admins" in u.groups}
    assert all(d.user in admins for d in campus.devices if d.role == "jump_host")


def test_sgts_follow_roles_and_groups(campus: Campus) -> None:
    sgt_names = {s.value: s.name for s in campus.sgts}
    assert sgt_names[4] == "Employees"
    assert sgt_names[0] == "Unknown"
    by_user = {u.username: u for u in campus.users}
    for d in campus.devices:
        expected = campus.expected_sgt(d.ip)
        assert expected in sgt_names
        if d.role in ("workstation", "laptop") and d.user and "Contractors" in by_user[d.user].groups:
            assert sgt_names[expected] == "Contractors"
        if d.role == "smartphone" and d.user is None:
            assert sgt_names[expected] == "Guests"
    matching = sum(d.sgt == campus.expected_sgt(d.ip) for d in campus.devices)
    assert matching / len(campus.devices) > 0.85


def test_some_servers_do_a_second_job(campus: Campus) -> None:
    dhcp = {d.index for d in campus.devices if d.role == "dhcp_server"}
    dns = campus.flows[(campus.flows["port"] == 53) & (campus.flows["protocol"] == UDP)]
    answering = dhcp & set(dns["dst"].tolist())
    assert 0 < len(answering) < len(dhcp)


def test_roles_are_learnable_from_behaviour_but_not_trivially(campus: Campus) -> None:
    """Nearest neighbour on service-usage profiles finds the roles (role-typical behaviours are near-universal,
    ADR 0006), yet desktops, laptops and phones spend most of their flows on the same service (https)."""
    f = campus.flows
    port = f["port"].astype(np.int64)
    port[(f["protocol"] == UDP) & (port >= 16384) & (port <= 32767)] = 16384  # RTP as one service
    port[port >= 49152] = 49152
    ends, sides, peers = [], [], []
    for side, end, peer in ((0, f["src"], f["dst"]), (1, f["dst"], f["src"])):
        ends.append(end)
        sides.append(np.full(len(f), side))
        peers.append(peer < 0)
    end = np.concatenate(ends).astype(np.int64)
    feature = (np.concatenate(sides) * 2 + np.concatenate(peers)) * 2**24 + np.tile(
        f["protocol"].astype(np.int64) * 65536 + port, 2
    )
    keep = end >= 0
    cols = np.unique(feature[keep], return_inverse=True)[1]
    x = np.zeros((len(campus.devices), int(cols.max()) + 1))
    np.add.at(x, (end[keep], cols), 1.0)
    x = np.log1p(x)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    sim = x @ x.T
    np.fill_diagonal(sim, -1.0)
    same = campus.role_index[sim.argmax(axis=1)] == campus.role_index
    assert 0.95 < same.mean() < 1.0
    for role in ("workstation", "laptop", "smartphone"):
        assert same[campus.role_index == campus.roles.index(role)].mean() > 0.9, role
        services = _service_share(campus, role)
        assert max(services, key=lambda k: services[k]) == (TCP, 443), role


def test_scanners_sweep_many_hosts_on_low_ports(campus: Campus) -> None:
    assert len(campus.scanners) == 1
    scanner = campus.scanners[0]
    rows = campus.flows[campus.flows["src"] == scanner]
    low = rows[(rows["port"] <= 1024) & (rows["dst"] >= 0)]
    assert len(set(low["dst"].tolist())) > 100
    assert len(set(low["port"].tolist())) > 100
    assert campus.devices[scanner].switch_id.startswith("sw-acc-")


def test_a_week_has_quiet_weekends_and_absent_laptops() -> None:
    c = generate_campus(CampusSpec(seed=4, switches=3, devices=1_000, remote_hosts=50, days=7))
    f = c.flows
    day = (f["first_ms"] - DEFAULT_START_MS) // DAY_MS  # 2026-11-02 is a Monday
    per_day = np.bincount(day, minlength=7)
    assert per_day[5:].max() < 0.5 * per_day[:5].min()
    owner = np.where(f["src"] >= 0, f["src"], f["dst"])
    seen = np.zeros((len(c.devices), 7), dtype=bool)
    seen[owner, day] = True
    weekdays_seen = seen[:, :5].sum(axis=1)
    laptops = c.role_index == c.roles.index("laptop")
    servers = c.role_index == c.roles.index("domain_controller")
    assert weekdays_seen[laptops].mean() < 4.6
    assert weekdays_seen[servers].min() == 5


def test_second_role_is_ground_truth_for_mixed_devices(campus: Campus) -> None:
    mixed = [d for d in campus.devices if campus.second_role(d.ip) is not None]
    assert 0 < len(mixed) < 0.05 * len(campus.devices)
    assert all(campus.second_role(d.ip) != d.role for d in mixed)


def test_campus_is_identical_across_processes_and_hash_seeds() -> None:
    """Nothing may depend on Python's per-process string hashing (set order) or on the clock."""
    script = (
        "import hashlib\n"
        "from clarion.synth import CampusSpec, generate_campus\n"
        "c = generate_campus(CampusSpec(seed=5, devices=300, switches=3, remote_hosts=30))\n"
        "h = hashlib.sha256(c.flows.tobytes())\n"
        "h.update(repr((c.devices, c.users, c.ad_groups, c.sessions, c.remote_hosts)).encode())\n"
        "h.update(''.join(g.digest or '' for g in c.edge_graphs()).encode())\n"
        "print(h.hexdigest())\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.add(run.stdout.strip())
    assert len(outputs) == 1


def test_access_devices_without_a_user_have_mab_sessions(campus: Campus) -> None:
    by_mac = {d.mac: d for d in campus.devices if d.mac}
    roles = Counter(by_mac[s.mac].role for s in campus.mab_sessions)
    assert {"printer", "ip_camera", "ip_phone", "badge_reader", "smartphone"} <= set(roles)
    assert not {"web_server", "domain_controller", "nvr"} & set(roles), "servers get static SGT mappings"
    for s in campus.mab_sessions:
        d = by_mac[s.mac]
        assert d.user is None
        assert s.user == d.mac.upper()
        assert (s.ip, s.sgt, s.profile, s.interface) == (d.ip, d.sgt, d.profile, d.interface)
    assert campus.stats()["mab_sessions"] == len(campus.mab_sessions) > 300


@pytest.mark.parametrize("devices", [2, 7, 30, 120])
def test_small_campuses_keep_the_flow_invariants_for_many_seeds(devices: int) -> None:
    for seed in range(12):
        f = generate_campus(CampusSpec(seed=seed, devices=devices, switches=2, remote_hosts=4)).flows
        assert len(f) == devices * 40
        assert not np.any(f["src"] == f["dst"])
        assert np.all((f["src"] >= 0) | (f["dst"] >= 0))
        assert np.all(f["port"] > 0)
        assert np.all(f["bytes"] >= 40 * f["packets"])
