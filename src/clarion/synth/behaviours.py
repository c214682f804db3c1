"""What each role does on the network: the services it uses and offers, with volumes and times.

Roles share the common services (everyone browses the same clouds; servers browse too; some
printers write to file shares; phones and video endpoints share SIP and RTP), so a clusterer
has to find roles from the mix, not from one tell-tale port. What sets a role apart in a real
campus is near-universal within it (p >= 0.9): desktops are domain members that map drives,
print through the print server and stay on overnight; corporate laptops are MDM-managed, probe
the VPN headend, carry Teams media and sleep at night; smartphones keep a push channel open and
never speak SMB, Kerberos or LDAP (ADR 0006). Variety lives in volumes, peers and optional extras.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion.synth.roles import ICMP, TCP, UDP


@dataclass(frozen=True)
class Use:
    """One behaviour of a role.

    ``peer`` is a role name or ``net:<group>`` (a slice of the remote hosts). The owner is the
    client unless ``server`` is set; then the peer is the client and the owner offers the port.
    """

    peer: str
    proto: int
    port: int
    weight: float
    size: float = 4_000.0  # median bytes per flow
    spread: float = 1.2  # sigma of the log-normal bytes per flow
    pkt: int = 600  # mean bytes per packet
    fpr: float = 2.0  # mean flows aggregated in one row
    dur: float = 2_000.0  # median duration of a row, ms
    fanout: int = 1  # 0: any peer (popularity-skewed); n: one of n peers fixed per device
    p: float = 1.0  # share of the role's devices that have this behaviour
    server: bool = False
    time: str = ""  # "" = the role's time profile
    port_hi: int = 0  # > port: a random even port in [port, port_hi] per row (RTP)
    db: bool = False  # the port is the engine port of the database server chosen as peer
    #: Behaviours of a role with the same non-empty ``alt`` are alternatives: each device has exactly
    #: one of them, chosen with odds ``p`` (an iPhone keeps APNs open, an Android phone FCM; never both).
    alt: str = ""


RTP_LO, RTP_HI = 16384, 32766
DB_PORTS = (1433, 3306, 5432, 1521)
DB_PORT_WEIGHTS = (0.4, 0.25, 0.25, 0.1)

REMOTE_GROUPS: tuple[tuple[str, float], ...] = (
    ("web", 0.45),
    ("saas", 0.12),
    ("updates", 0.05),
    ("collab", 0.03),
    ("cam_cloud", 0.02),
    ("iot_cloud", 0.03),
    ("ntp", 0.02),
    ("dns", 0.02),
    ("smtp", 0.06),
    ("inbound", 0.17),
    ("mdm", 0.01),
    ("vpn", 0.005),
    ("push", 0.01),
    ("carrier", 0.005),
)

NOISE_PORTS = (
    21, 22, 23, 25, 80, 110, 135, 137, 139, 143, 443, 445, 1900, 3389, 5353, 5900, 8000, 8080, 8443, 8888,
    1433, 3306, 5432, 6379, 9200, 27017, 11211, 161, 69, 2049, 111, 5985, 10000, 4444,
)  # fmt: skip


def dns(w: float, peer: str = "domain_controller", p: float = 1.0) -> Use:
    return Use(peer, UDP, 53, w, size=150, spread=0.4, pkt=90, fpr=12, dur=40, fanout=2, p=p)


def ntp(w: float, peer: str = "domain_controller", time: str = "always") -> Use:
    return Use(peer, UDP, 123, w, size=90, spread=0.05, pkt=90, fpr=1, dur=20, fanout=1, time=time)


def dhcp(w: float) -> Use:
    return Use("dhcp_server", UDP, 67, w, size=680, spread=0.2, pkt=340, fpr=1, dur=60, fanout=2)


def syslog(w: float, p: float = 1.0) -> Use:
    return Use("monitoring_server", UDP, 514, w, size=3_000, spread=1.5, pkt=180, fpr=1, dur=300_000, p=p)


def windows_domain(scale: float, p: float = 1.0) -> list[Use]:
    """A domain-joined Windows host: DNS, Kerberos, LDAP, SYSVOL, RPC, time, DHCP."""
    dc = "domain_controller"
    return [
        dns(12 * scale),
        Use(dc, TCP, 88, 4 * scale, size=3_500, spread=0.6, pkt=500, fpr=3, dur=200, fanout=2, p=p),
        Use(dc, TCP, 389, 4 * scale, size=6_000, spread=1.0, pkt=400, fpr=3, dur=300, fanout=2, p=p),
        Use(dc, TCP, 445, 2 * scale, size=40_000, spread=1.5, pkt=700, fpr=2, dur=1_500, fanout=2, p=p),
        Use(dc, TCP, 135, 1.5 * scale, size=2_500, spread=0.6, pkt=250, fpr=2, dur=200, fanout=2, p=p),
        Use(dc, TCP, 3268, 0.6 * scale, size=5_000, spread=1.0, pkt=400, fpr=2, dur=300, fanout=2, p=0.5 * p),
        Use(dc, TCP, 636, 0.4 * scale, size=8_000, spread=1.0, pkt=500, fpr=2, dur=300, fanout=2, p=0.3 * p),
        ntp(0.5 * scale),
        dhcp(0.2 * scale),
    ]


def managed(w: float, p: float = 1.0) -> list[Use]:
    """Polled by monitoring: SNMP and ping (ICMP echo is exported with port type*256+code)."""
    mon = "monitoring_server"
    return [
        Use(mon, UDP, 161, w, size=350, spread=0.6, pkt=120, fpr=6, dur=500, p=p, server=True, time="always"),
        Use(mon, ICMP, 2048, 0.5 * w, size=84, spread=0.05, pkt=84, fpr=12, dur=100, p=p, server=True, time="always"),
    ]


def server_admin(w: float, ssh: bool, rdp: bool) -> list[Use]:
    """Reached by admins from jump hosts; backed up at night by a backup server."""
    uses = [
        Use("backup_server", TCP, 10_000, w, size=2e9, spread=1.2, pkt=1_400, fpr=1, dur=1_800_000, server=True,
            time="night"),
    ]  # fmt: skip
    if ssh:
        uses.append(Use("jump_host", TCP, 22, 0.5 * w, size=60_000, spread=1.8, pkt=150, fpr=1, dur=600_000,
                        fanout=0, server=True, time="office"))  # fmt: skip
    if rdp:
        uses.append(Use("jump_host", TCP, 3389, 0.5 * w, size=3e6, spread=1.5, pkt=600, fpr=1, dur=1_200_000,
                        fanout=0, server=True, time="office"))  # fmt: skip
    return uses


def browse(w: float, quic_p: float = 0.7, saas: float = 0.5) -> list[Use]:
    """Web browsing and cloud apps, heavy-tailed: most pages are small, some downloads huge."""
    return [
        Use("net:web", TCP, 443, w, size=60_000, spread=1.9, pkt=900, fpr=6, dur=20_000, fanout=0),
        Use("net:web", TCP, 80, 0.2 * w, size=20_000, spread=1.6, pkt=700, fpr=3, dur=5_000, fanout=0),
        Use("net:web", UDP, 443, 0.25 * w, size=120_000, spread=1.9, pkt=1_100, fpr=4, dur=20_000, fanout=0,
            p=quic_p),
        Use("net:saas", TCP, 443, saas * w, size=150_000, spread=1.7, pkt=1_000, fpr=8, dur=60_000, fanout=0),
        Use("net:updates", TCP, 443, 0.1 * w, size=2e6, spread=2.2, pkt=1_300, fpr=2, dur=30_000, fanout=0),
    ]  # fmt: skip


def rtp(peer: str, w: float, p: float = 1.0) -> Use:
    return Use(peer, UDP, RTP_LO, w, size=1.5e6, spread=1.2, pkt=200, fpr=1, dur=180_000, fanout=0, p=p,
               port_hi=RTP_HI)  # fmt: skip


def _workstation() -> list[Use]:
    """A wired desktop: a domain member that maps drives, prints through the print server, stays on overnight."""
    return [
        *windows_domain(1.0),
        *browse(18, quic_p=0.6),
        Use("web_server", TCP, 443, 4, size=30_000, spread=1.5, pkt=800, fpr=4, dur=10_000, fanout=3),
        Use("web_server", TCP, 80, 1, size=15_000, spread=1.3, pkt=700, fpr=2, dur=5_000, fanout=2, p=0.8),
        Use("file_server", TCP, 445, 6, size=300_000, spread=2.0, pkt=1_000, fpr=3, dur=30_000, fanout=2),
        Use("mail_server", TCP, 443, 2, size=80_000, spread=1.6, pkt=900, fpr=4, dur=60_000, fanout=1),
        Use("mail_server", TCP, 993, 0.3, size=40_000, spread=1.6, pkt=800, fpr=2, dur=60_000, fanout=1, p=0.1),
        Use("print_server", TCP, 445, 1.0, size=400_000, spread=1.5, pkt=1_200, fpr=1, dur=3_000, fanout=1, p=0.95),
        Use("print_server", TCP, 135, 0.3, size=2_000, spread=0.5, pkt=250, fpr=1, dur=200, fanout=1, p=0.95),
        Use("printer", TCP, 9100, 0.4, size=500_000, spread=1.5, pkt=1_300, fpr=1, dur=4_000, fanout=2, p=0.1),
        Use("db_server", TCP, 0, 0.5, size=50_000, spread=1.8, pkt=600, fpr=3, dur=5_000, fanout=1, p=0.1, db=True),
        Use("call_manager", TCP, 5061, 0.3, size=8_000, spread=0.8, pkt=600, fpr=2, dur=60_000, fanout=2, p=0.1),
        Use("net:collab", UDP, 3478, 0.6, size=8e6, spread=1.4, pkt=900, fpr=1, dur=1_800_000, fanout=0, p=0.2,
            port_hi=3481),
        Use("nvr", TCP, 443, 0.5, size=5e7, spread=1.2, pkt=1_300, fpr=1, dur=600_000, fanout=1, p=0.03),
        # Managed by Configuration Manager: the client keeps its fast channel to the management point (an IIS
        # server) open, and fetches updates from nearby desktops over Delivery Optimization.
        Use("web_server", TCP, 10123, 1.5, size=2_000, spread=0.6, pkt=200, fpr=2, dur=3_600_000, fanout=1, p=0.95,
            time="always"),
        Use("workstation", TCP, 7680, 1, size=2e6, spread=2.0, pkt=1_300, fpr=1, dur=60_000, fanout=0, p=0.6),
        # Overnight, while nobody is at the desk: Windows Update and the backup agent.
        Use("net:updates", TCP, 443, 2, size=5e6, spread=2.0, pkt=1_300, fpr=1, dur=60_000, fanout=0, p=0.95,
            time="night"),
        Use("backup_server", TCP, 8400, 1.5, size=5e7, spread=1.5, pkt=1_400, fpr=1, dur=1_200_000, fanout=1,
            p=0.9, time="night"),
    ]  # fmt: skip


def _laptop() -> list[Use]:
    """A managed corporate laptop: MDM check-ins, the VPN client's probe, Teams media; asleep at night."""
    return [
        dns(6),
        dhcp(1.5),  # it roams between access points and renews its lease on each
        ntp(0.3, peer="net:ntp", time=""),
        *browse(20, quic_p=0.85, saas=0.8),
        Use("net:mdm", TCP, 443, 3, size=20_000, spread=1.0, pkt=600, fpr=2, dur=5_000, fanout=1, p=0.97),
        Use("net:vpn", TCP, 443, 4, size=3_000, spread=0.5, pkt=300, fpr=3, dur=500, fanout=1, p=0.95),
        Use("net:collab", UDP, 3478, 8, size=2e7, spread=1.4, pkt=1_000, fpr=1, dur=1_800_000, fanout=0, p=0.95,
            port_hi=3481),
        Use("net:push", TCP, 5223, 0.5, size=4_000, spread=1.0, pkt=200, fpr=1, dur=1_800_000, fanout=1, p=0.15),
        Use("web_server", TCP, 443, 3, size=30_000, spread=1.5, pkt=800, fpr=4, dur=10_000, fanout=3),
        Use("mail_server", TCP, 443, 3, size=80_000, spread=1.6, pkt=900, fpr=4, dur=60_000, fanout=1, p=0.9),
        Use("file_server", TCP, 445, 1, size=300_000, spread=2.0, pkt=1_000, fpr=3, dur=30_000, fanout=2, p=0.3),
        # Windows laptops are domain members; Macs get Kerberos tickets and password expiry over LDAP through
        # the Kerberos SSO extension while on the corporate network. Only Windows pulls policies over SMB.
        Use("domain_controller", TCP, 88, 2, size=3_500, spread=0.6, pkt=500, fpr=3, dur=200, fanout=2, p=0.9),
        Use("domain_controller", TCP, 389, 2, size=6_000, spread=1.0, pkt=400, fpr=3, dur=300, fanout=2, p=0.9),
        Use("domain_controller", TCP, 445, 1, size=40_000, spread=1.5, pkt=700, fpr=2, dur=1_500, fanout=2, p=0.4),
        Use("printer", TCP, 631, 0.5, size=400_000, spread=1.5, pkt=1_200, fpr=1, dur=4_000, fanout=2, p=0.5),
        Use("call_manager", TCP, 5061, 0.3, size=8_000, spread=0.8, pkt=600, fpr=2, dur=60_000, fanout=2, p=0.15),
        Use("web_server", TCP, 22, 0.5, size=60_000, spread=1.8, pkt=150, fpr=1, dur=600_000, fanout=0, p=0.1),
    ]  # fmt: skip


def _smartphone() -> list[Use]:
    """A phone on Wi-Fi: one push channel always open, Wi-Fi calling to its carrier; no SMB, Kerberos or LDAP."""
    return [
        dns(8),
        dhcp(1.0),
        ntp(0.3, peer="net:ntp", time=""),
        *browse(24, quic_p=0.95, saas=0.35),
        Use("net:push", TCP, 5223, 10, size=4_000, spread=1.0, pkt=200, fpr=2, dur=1_800_000, fanout=1, p=0.55,
            alt="push"),
        Use("net:push", TCP, 5228, 10, size=4_000, spread=1.0, pkt=200, fpr=2, dur=1_800_000, fanout=1, p=0.45,
            alt="push"),
        # Wi-Fi calling (on by default with most carriers): an IPsec tunnel to the carrier's gateway.
        Use("net:carrier", UDP, 4500, 4, size=3e5, spread=1.2, pkt=200, fpr=1, dur=600_000, fanout=1, p=0.9),
        Use("net:dns", TCP, 853, 0.5, size=3_000, spread=0.8, pkt=150, fpr=6, dur=5_000, fanout=1, p=0.1),
        Use("mail_server", TCP, 443, 3, size=60_000, spread=1.6, pkt=900, fpr=4, dur=300_000, fanout=1, p=0.6),
        Use("net:collab", UDP, 3478, 1, size=6e6, spread=1.4, pkt=900, fpr=1, dur=1_200_000, fanout=0, p=0.2,
            port_hi=3481),
        Use("web_server", TCP, 443, 1, size=30_000, spread=1.5, pkt=800, fpr=3, dur=10_000, fanout=2, p=0.2),
    ]  # fmt: skip


def _ip_phone() -> list[Use]:
    cm = "call_manager"
    return [
        # The call manager's phone security profile decides the transport for a whole campus: SIP over TLS,
        # except a few legacy phones left on plain SIP.
        Use(cm, UDP, 5060, 8, size=2_000, spread=0.5, pkt=500, fpr=4, dur=3_000_000, fanout=2, p=0.05, time="always",
            alt="sip"),
        Use(cm, TCP, 5061, 8, size=4_000, spread=0.5, pkt=600, fpr=4, dur=3_000_000, fanout=2, p=0.95, time="always",
            alt="sip"),
        Use(cm, UDP, 69, 0.5, size=30_000, spread=1.0, pkt=520, fpr=2, dur=2_000, fanout=1, time="always"),
        Use(cm, TCP, 6970, 0.5, size=40_000, spread=1.0, pkt=1_000, fpr=2, dur=2_000, fanout=1, time="always"),
        Use(cm, TCP, 3804, 0.1, size=6_000, spread=0.5, pkt=600, fpr=1, dur=1_000, fanout=1, p=0.3),
        Use(cm, TCP, 8443, 0.3, size=12_000, spread=1.0, pkt=700, fpr=2, dur=2_000, fanout=1),
        rtp("ip_phone", 6),
        rtp("video_endpoint", 0.6),
        dns(2),
        ntp(1),
        dhcp(0.2),
    ]  # fmt: skip


def _video_endpoint() -> list[Use]:
    cm = "call_manager"
    return [
        Use(cm, UDP, 5060, 3, size=2_000, spread=0.5, pkt=500, fpr=4, dur=3_000_000, fanout=2, p=0.5, time="always"),
        Use(cm, TCP, 5061, 4, size=4_000, spread=0.5, pkt=600, fpr=4, dur=3_000_000, fanout=2, time="always"),
        rtp("video_endpoint", 3),
        rtp("ip_phone", 2),
        Use("net:collab", UDP, 5004, 4, size=4e7, spread=1.2, pkt=1_100, fpr=1, dur=1_800_000, fanout=0),
        Use("net:collab", TCP, 443, 4, size=200_000, spread=1.5, pkt=900, fpr=3, dur=600_000, fanout=0),
        Use("net:collab", UDP, 3478, 1, size=1e6, spread=1.5, pkt=900, fpr=1, dur=600_000, fanout=0, p=0.5),
        Use("video_endpoint", TCP, 1720, 0.5, size=10_000, spread=0.8, pkt=300, fpr=1, dur=1_800_000, fanout=0,
            p=0.2),
        dns(2),
        ntp(1),
        dhcp(0.2),
        *managed(1),
        Use("jump_host", TCP, 443, 0.2, size=200_000, spread=1.2, pkt=900, fpr=2, dur=60_000, fanout=0, server=True),
    ]  # fmt: skip


def _printer() -> list[Use]:
    return [
        Use("print_server", TCP, 9100, 6, size=800_000, spread=1.6, pkt=1_300, fpr=2, dur=5_000, server=True),
        Use("print_server", TCP, 515, 1, size=600_000, spread=1.6, pkt=1_200, fpr=1, dur=5_000, server=True, p=0.3),
        Use("print_server", UDP, 161, 2, size=600, spread=0.5, pkt=150, fpr=8, dur=1_000, server=True, time="always"),
        Use("laptop", TCP, 631, 1.5, size=400_000, spread=1.5, pkt=1_200, fpr=1, dur=4_000, fanout=0, server=True,
            p=0.6),
        *managed(1),
        Use("jump_host", TCP, 443, 0.3, size=100_000, spread=1.2, pkt=900, fpr=3, dur=60_000, fanout=0, server=True,
            p=0.5),
        Use("file_server", TCP, 445, 2, size=3e6, spread=1.5, pkt=1_300, fpr=1, dur=10_000, fanout=1, p=0.4),
        Use("mail_server", TCP, 25, 1, size=2e6, spread=1.3, pkt=1_300, fpr=1, dur=5_000, fanout=1, p=0.5),
        Use("domain_controller", TCP, 389, 0.5, size=5_000, spread=1.0, pkt=400, fpr=1, dur=300, fanout=1, p=0.3),
        dns(1),
        ntp(0.5),
        dhcp(0.2),
        Use("net:updates", TCP, 443, 0.3, size=200_000, spread=2.0, pkt=1_200, fpr=1, dur=10_000, fanout=0, p=0.3),
    ]  # fmt: skip


def _ip_camera() -> list[Use]:
    return [
        Use("nvr", TCP, 554, 10, size=4e8, spread=0.8, pkt=1_300, fpr=1, dur=3_600_000, server=True, time="always"),
        Use("nvr", TCP, 80, 1.5, size=20_000, spread=1.0, pkt=600, fpr=3, dur=2_000, server=True, p=0.5),
        *managed(1),
        ntp(1),
        dns(0.5),
        dhcp(0.1),
        Use("net:cam_cloud", TCP, 443, 2, size=60_000, spread=1.5, pkt=700, fpr=2, dur=60_000, fanout=1, p=0.3),
        syslog(0.5, p=0.3),
    ]


def _badge_reader() -> list[Use]:
    return [
        Use("facilities_server", TCP, 3001, 8, size=400, spread=0.8, pkt=120, fpr=3, dur=1_000),
        *managed(0.5),
        ntp(1),
        dns(0.3, p=0.5),
    ]


def _hvac_controller() -> list[Use]:
    bms = "facilities_server"
    return [
        Use(bms, UDP, 47808, 6, size=900, spread=0.8, pkt=120, fpr=10, dur=60_000, server=True),
        Use("hvac_controller", UDP, 47808, 3, size=300, spread=0.6, pkt=80, fpr=4, dur=10_000, fanout=4),
        Use(bms, UDP, 47808, 2, size=400, spread=0.6, pkt=100, fpr=4, dur=10_000),
        ntp(0.5),
        *managed(0.3, p=0.5),
    ]


def _iot_sensor() -> list[Use]:
    return [
        Use("net:iot_cloud", TCP, 8883, 8, size=3_000, spread=1.2, pkt=150, fpr=2, dur=300_000, fanout=1),
        Use("net:iot_cloud", TCP, 443, 3, size=8_000, spread=1.5, pkt=400, fpr=1, dur=5_000, fanout=1),
        Use("net:iot_cloud", UDP, 5683, 1, size=300, spread=0.6, pkt=80, fpr=4, dur=2_000, fanout=1, p=0.15),
        Use("facilities_server", TCP, 1883, 3, size=2_000, spread=1.0, pkt=120, fpr=2, dur=300_000, p=0.3),
        dns(3),
        ntp(1, peer="net:ntp"),
        dhcp(0.5),
    ]
