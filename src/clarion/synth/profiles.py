"""Behaviour profiles of the server roles, and the table of every role's profile.

Servers are not only servers: they resolve names, sync time, log to syslog, fetch updates
and sometimes browse, and some talk to each other (replication, failover, clusters).
"""

from __future__ import annotations

from clarion.synth import behaviours as b
from clarion.synth.behaviours import Use
from clarion.synth.roles import ROLE_NAMES, TCP, UDP


def _server_basics(dns_w: float = 3, syslog_w: float = 2) -> list[Use]:
    return [b.dns(dns_w), b.ntp(0.5), b.syslog(syslog_w), *b.managed(1)]


def _web_server() -> list[Use]:
    return [
        Use("net:inbound", TCP, 443, 20, size=40_000, spread=1.8, pkt=900, fpr=6, dur=10_000, fanout=0, server=True,
            p=0.6),
        Use("net:inbound", TCP, 80, 4, size=3_000, spread=1.2, pkt=500, fpr=3, dur=1_000, fanout=0, server=True,
            p=0.5),
        Use("db_server", TCP, 0, 10, size=80_000, spread=1.8, pkt=700, fpr=20, dur=60_000, fanout=2, db=True),
        Use("web_server", TCP, 8080, 2, size=30_000, spread=1.5, pkt=800, fpr=10, dur=30_000, fanout=2, p=0.4),
        Use("domain_controller", TCP, 389, 1, size=6_000, spread=1.0, pkt=400, fpr=4, dur=300, fanout=2),
        Use("domain_controller", TCP, 88, 0.5, size=3_500, spread=0.6, pkt=500, fpr=2, dur=200, fanout=2, p=0.5),
        Use("mail_server", TCP, 587, 0.5, size=20_000, spread=1.2, pkt=800, fpr=1, dur=2_000, fanout=1, p=0.4),
        Use("net:updates", TCP, 443, 1, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        Use("net:web", TCP, 443, 0.5, size=30_000, spread=1.8, pkt=900, fpr=2, dur=5_000, fanout=0, p=0.4),
        Use("net:saas", TCP, 443, 1, size=50_000, spread=1.8, pkt=900, fpr=3, dur=5_000, fanout=0, p=0.3),
        *_server_basics(),
        *b.server_admin(1, ssh=True, rdp=False),
    ]  # fmt: skip


def _db_server() -> list[Use]:
    return [
        Use("db_server", TCP, 0, 2, size=5e7, spread=1.5, pkt=1_200, fpr=1, dur=3_600_000, fanout=1, p=0.4, db=True),
        Use("domain_controller", TCP, 88, 1, size=3_500, spread=0.6, pkt=500, fpr=2, dur=200, fanout=2, p=0.5),
        Use("domain_controller", TCP, 389, 0.5, size=6_000, spread=1.0, pkt=400, fpr=2, dur=300, fanout=2, p=0.5),
        Use("net:updates", TCP, 443, 0.3, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        *_server_basics(dns_w=2),
        *b.server_admin(1.5, ssh=True, rdp=True),
    ]  # fmt: skip


def _file_server() -> list[Use]:
    return [
        *b.windows_domain(0.8),
        Use("file_server", TCP, 445, 2, size=5e7, spread=2.0, pkt=1_300, fpr=2, dur=600_000, fanout=1, p=0.5),
        Use("net:updates", TCP, 443, 0.5, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        b.syslog(1),
        *b.managed(1),
        *b.server_admin(2, ssh=False, rdp=True),
    ]


def _domain_controller() -> list[Use]:
    dc = "domain_controller"
    return [
        Use(dc, TCP, 389, 3, size=50_000, spread=1.5, pkt=600, fpr=4, dur=5_000, fanout=2),
        Use(dc, TCP, 88, 1, size=4_000, spread=0.6, pkt=500, fpr=2, dur=200, fanout=2),
        Use(dc, TCP, 135, 2, size=40_000, spread=1.5, pkt=600, fpr=3, dur=3_000, fanout=2),
        Use(dc, TCP, 445, 1, size=200_000, spread=1.5, pkt=1_000, fpr=2, dur=5_000, fanout=2),
        Use(dc, TCP, 53, 1, size=30_000, spread=1.0, pkt=800, fpr=1, dur=1_000, fanout=2),
        Use("net:dns", UDP, 53, 8, size=200, spread=0.5, pkt=100, fpr=30, dur=50, fanout=2),
        Use("net:dns", TCP, 53, 0.5, size=2_000, spread=0.8, pkt=300, fpr=2, dur=200, fanout=2),
        b.ntp(1, peer="net:ntp"),
        Use("net:updates", TCP, 443, 0.3, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        b.syslog(1),
        *b.managed(1),
        *b.server_admin(0.6, ssh=False, rdp=True),
    ]


def _dhcp_server() -> list[Use]:
    return [
        Use("domain_controller", UDP, 53, 4, size=400, spread=0.5, pkt=200, fpr=20, dur=100, fanout=2),
        Use("domain_controller", TCP, 389, 1, size=6_000, spread=1.0, pkt=400, fpr=2, dur=300, fanout=2),
        Use("domain_controller", TCP, 88, 0.5, size=3_500, spread=0.6, pkt=500, fpr=2, dur=200, fanout=2),
        Use("dhcp_server", TCP, 647, 2, size=20_000, spread=1.2, pkt=200, fpr=1, dur=3_600_000, fanout=1),
        b.ntp(0.5),
        b.syslog(1),
        *b.managed(1),
        *b.server_admin(0.5, ssh=False, rdp=True),
    ]


def _mail_server() -> list[Use]:
    return [
        Use("net:smtp", TCP, 25, 8, size=60_000, spread=2.0, pkt=900, fpr=2, dur=3_000, fanout=0, server=True),
        Use("net:smtp", TCP, 25, 8, size=50_000, spread=2.0, pkt=900, fpr=2, dur=3_000, fanout=0),
        Use("domain_controller", TCP, 389, 3, size=20_000, spread=1.2, pkt=500, fpr=6, dur=500, fanout=2),
        Use("domain_controller", TCP, 3268, 2, size=20_000, spread=1.2, pkt=500, fpr=6, dur=500, fanout=2),
        Use("domain_controller", TCP, 88, 1, size=3_500, spread=0.6, pkt=500, fpr=4, dur=200, fanout=2),
        Use("mail_server", TCP, 25, 1, size=50_000, spread=2.0, pkt=900, fpr=3, dur=3_000, fanout=1, p=0.5),
        Use("net:updates", TCP, 443, 1, size=1e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        *_server_basics(dns_w=4, syslog_w=1),
        *b.server_admin(1, ssh=False, rdp=True),
    ]  # fmt: skip


def _nvr() -> list[Use]:
    return [
        Use("workstation", TCP, 443, 2, size=5e7, spread=1.2, pkt=1_300, fpr=1, dur=600_000, fanout=0, server=True,
            time="office"),
        Use("file_server", TCP, 445, 1, size=5e8, spread=1.0, pkt=1_400, fpr=1, dur=1_800_000, fanout=1, p=0.3),
        Use("net:cam_cloud", TCP, 443, 0.5, size=1e6, spread=1.5, pkt=1_200, fpr=1, dur=30_000, fanout=1, p=0.3),
        *_server_basics(dns_w=1, syslog_w=1),
        *b.server_admin(0.3, ssh=False, rdp=True)[1:],
    ]  # fmt: skip


def _print_server() -> list[Use]:
    return [
        *b.windows_domain(0.6),
        Use("net:updates", TCP, 443, 0.5, size=5e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        b.syslog(1),
        *b.managed(1),
        *b.server_admin(0.3, ssh=False, rdp=True),
    ]


def _call_manager() -> list[Use]:
    cm = "call_manager"
    return [
        Use(cm, TCP, 8500, 4, size=200_000, spread=1.2, pkt=800, fpr=2, dur=3_600_000, fanout=2),
        Use(cm, TCP, 1500, 2, size=2e6, spread=1.5, pkt=1_000, fpr=1, dur=600_000, fanout=2),
        Use("net:collab", UDP, 5060, 4, size=20_000, spread=1.0, pkt=500, fpr=6, dur=3_600_000, fanout=1),
        Use("net:collab", TCP, 5061, 2, size=30_000, spread=1.0, pkt=600, fpr=4, dur=3_600_000, fanout=1),
        Use("domain_controller", TCP, 389, 1, size=200_000, spread=1.2, pkt=800, fpr=2, dur=5_000, fanout=1),
        Use("jump_host", TCP, 8443, 0.3, size=300_000, spread=1.2, pkt=900, fpr=3, dur=300_000, fanout=0, server=True,
            time="office"),
        *_server_basics(dns_w=2, syslog_w=1),
        *b.server_admin(0.3, ssh=True, rdp=False),
    ]  # fmt: skip


def _backup_server() -> list[Use]:
    return [
        Use("file_server", TCP, 445, 4, size=5e9, spread=1.0, pkt=1_400, fpr=1, dur=3_600_000, fanout=0, time="night"),
        Use("net:saas", TCP, 443, 2, size=3e9, spread=1.0, pkt=1_400, fpr=1, dur=3_600_000, fanout=1, p=0.5,
            time="night"),
        *b.windows_domain(0.5),
        b.syslog(1),
        *b.managed(1),
    ]  # fmt: skip


def _jump_host() -> list[Use]:
    return [
        *b.windows_domain(1.0),
        *b.browse(6),
        Use("file_server", TCP, 445, 2, size=300_000, spread=2.0, pkt=1_000, fpr=3, dur=30_000, fanout=2),
        Use("web_server", TCP, 443, 2, size=30_000, spread=1.5, pkt=800, fpr=4, dur=10_000, fanout=0),
        Use("monitoring_server", TCP, 443, 3, size=500_000, spread=1.5, pkt=900, fpr=6, dur=600_000, fanout=1),
        Use("facilities_server", TCP, 443, 0.5, size=200_000, spread=1.2, pkt=900, fpr=3, dur=300_000, p=0.2),
    ]  # fmt: skip


def _monitoring_server() -> list[Use]:
    return [
        Use("web_server", TCP, 443, 3, size=8_000, spread=0.6, pkt=600, fpr=12, dur=1_000, fanout=0, time="always"),
        Use("mail_server", TCP, 25, 0.5, size=6_000, spread=0.6, pkt=500, fpr=1, dur=1_000, fanout=1),
        Use("domain_controller", TCP, 389, 0.5, size=6_000, spread=1.0, pkt=400, fpr=2, dur=300, fanout=2),
        Use("net:updates", TCP, 443, 0.5, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        b.dns(2),
        b.ntp(1),
        *b.server_admin(0.5, ssh=True, rdp=False),
    ]  # fmt: skip


def _facilities_server() -> list[Use]:
    return [
        Use("domain_controller", TCP, 389, 1, size=60_000, spread=1.2, pkt=600, fpr=2, dur=2_000, fanout=2),
        Use("domain_controller", TCP, 636, 1, size=60_000, spread=1.2, pkt=600, fpr=2, dur=2_000, fanout=2),
        Use("db_server", TCP, 0, 3, size=200_000, spread=1.5, pkt=800, fpr=8, dur=60_000, fanout=1, p=0.7, db=True),
        Use("workstation", TCP, 443, 1, size=300_000, spread=1.2, pkt=900, fpr=3, dur=300_000, fanout=0, server=True,
            time="office"),
        Use("net:updates", TCP, 443, 1, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=30_000, fanout=0),
        *_server_basics(dns_w=2, syslog_w=1),
        *b.server_admin(0.5, ssh=False, rdp=True),
    ]  # fmt: skip


BEHAVIOURS: dict[str, tuple[Use, ...]] = {
    "workstation": tuple(b._workstation()),
    "laptop": tuple(b._laptop()),
    "smartphone": tuple(b._smartphone()),
    "ip_phone": tuple(b._ip_phone()),
    "video_endpoint": tuple(b._video_endpoint()),
    "printer": tuple(b._printer()),
    "ip_camera": tuple(b._ip_camera()),
    "badge_reader": tuple(b._badge_reader()),
    "hvac_controller": tuple(b._hvac_controller()),
    "iot_sensor": tuple(b._iot_sensor()),
    "web_server": tuple(_web_server()),
    "db_server": tuple(_db_server()),
    "file_server": tuple(_file_server()),
    "domain_controller": tuple(_domain_controller()),
    "dhcp_server": tuple(_dhcp_server()),
    "mail_server": tuple(_mail_server()),
    "nvr": tuple(_nvr()),
    "print_server": tuple(_print_server()),
    "call_manager": tuple(_call_manager()),
    "backup_server": tuple(_backup_server()),
    "jump_host": tuple(_jump_host()),
    "monitoring_server": tuple(_monitoring_server()),
    "facilities_server": tuple(_facilities_server()),
}

_REMOTE = {name for name, _ in b.REMOTE_GROUPS}
assert set(BEHAVIOURS) == set(ROLE_NAMES), "every role needs a behaviour profile"
for _role, _uses in BEHAVIOURS.items():
    for _u in _uses:
        _target = _u.peer[4:] if _u.peer.startswith("net:") else _u.peer
        assert _target in (_REMOTE if _u.peer.startswith("net:") else ROLE_NAMES), f"{_role}: unknown peer {_u.peer}"
        assert not (_u.server and _u.peer.startswith("net:") and _u.db), f"{_role}: bad behaviour {_u}"
