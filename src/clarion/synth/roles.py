"""Device roles of a campus: how many, where they sit, which SGT they should carry.

The behaviour of each role (which services it uses and offers) is in ``behaviours.py``;
this module holds what a network and an ISE deployment know about a device.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion.synth.model import SynthSgt

TCP = 6
UDP = 17
ICMP = 1

# ISE's default SGTs (see /work/shared/reference) plus the ones a campus adds for its device classes.
SGTS: tuple[SynthSgt, ...] = (
    SynthSgt(0, "Unknown", "Unknown Security Group"),
    SynthSgt(2, "TrustSec_Devices", "TrustSec Devices Security Group"),
    SynthSgt(3, "Network_Services", "Network Services Security Group"),
    SynthSgt(4, "Employees", "Employee Security Group"),
    SynthSgt(5, "Contractors", "Contractor Security Group"),
    SynthSgt(6, "Guests", "Guest Security Group"),
    SynthSgt(7, "Production_Users", "Production User Security Group"),
    SynthSgt(8, "Developers", "Developer Security Group"),
    SynthSgt(9, "Auditors", "Auditor Security Group"),
    SynthSgt(10, "Point_of_Sale_Systems", "Point of Sale Security Group"),
    SynthSgt(11, "Production_Servers", "Production Servers Security Group"),
    SynthSgt(12, "Development_Servers", "Development Servers Security Group"),
    SynthSgt(13, "Test_Servers", "Test Servers Security Group"),
    SynthSgt(14, "PCI_Servers", "PCI Servers Security Group"),
    SynthSgt(15, "BYOD", "BYOD Security Group"),
    SynthSgt(16, "Printers", "Printers and multifunction devices"),
    SynthSgt(17, "IP_Cameras", "Video surveillance cameras"),
    SynthSgt(18, "IoT_Devices", "Sensors and other IoT devices"),
    SynthSgt(19, "Building_Management", "HVAC controllers and the building management system"),
    SynthSgt(20, "Physical_Access", "Badge readers and door controllers"),
    SynthSgt(21, "VoIP_Phones", "IP phones"),
    SynthSgt(22, "Video_Endpoints", "Video conferencing endpoints"),
    SynthSgt(23, "Web_Servers", "Web and application servers"),
    SynthSgt(24, "Database_Servers", "Database servers"),
    SynthSgt(25, "File_Servers", "File servers"),
    SynthSgt(26, "Mail_Servers", "Mail servers"),
    SynthSgt(27, "Voice_Servers", "Call managers"),
    SynthSgt(28, "Video_Recorders", "Network video recorders"),
    SynthSgt(29, "Print_Servers", "Print servers"),
    SynthSgt(30, "Backup_Servers", "Backup servers"),
    SynthSgt(31, "Admin_Hosts", "Jump hosts and admin workstations"),
    SynthSgt(32, "Network_Management", "Monitoring, SNMP and syslog"),
    SynthSgt(255, "Quarantined_Systems", "Quarantine Security Group"),
)
SGT_BY_NAME = {s.name: s.value for s in SGTS}


@dataclass(frozen=True)
class Role:
    """What the network and ISE know about one kind of device."""

    name: str
    share: float
    sgt: str
    vlan: int
    datacenter: bool
    profiles: tuple[tuple[str, float], ...]
    ouis: tuple[str, ...]
    #: Relative number of flow rows a device of this role originates (or owns, for served flows).
    activity: float
    #: Default time profile of its behaviours: "office", "always", "night" or "day" (gone at night).
    time: str
    #: Whether a person is assigned to devices of this role (802.1X user sessions).
    personal: bool = False
    #: Share of devices reaching the switch over Wi-Fi (an access point port).
    wifi: float = 0.0
    #: Chance a device is on the network on a given day (laptops travel, phones go home).
    presence: float = 1.0
    #: Activity on Saturdays and Sundays relative to weekdays.
    weekend: float = 1.0

    @property
    def can_be_ip_only(self) -> bool:
        """Clients may be seen only by IP (behind a routed hop); servers never are."""
        return not self.datacenter


_VM = ("00:50:56", "00:0c:29")
_VM_PROFILES = (("VMWare-Device", 0.8), ("Linux-Workstation", 0.1), ("Unknown", 0.1))
_WIN_VM_PROFILES = (("VMWare-Device", 0.7), ("Windows-Server", 0.2), ("Unknown", 0.1))

ROLES: tuple[Role, ...] = (
    Role(
        "workstation", 0.25, "Employees", 10, False,
        (("Windows11-Workstation", 0.55), ("Windows10-Workstation", 0.35), ("Microsoft-Workstation", 0.05),
         ("Unknown", 0.05)),
        ("f8:b1:56", "18:66:da", "c8:d9:d2", "70:b5:e8"), 1.3, "office", personal=True, presence=0.98, weekend=0.15,
    ),
    Role(
        "laptop", 0.2, "Employees", 10, False,
        (("Apple-MacBook", 0.45), ("OS_X_Sonoma-Workstation", 0.15), ("Windows11-Workstation", 0.3), ("Unknown", 0.1)),
        ("a4:83:e7", "f0:18:98", "3c:22:fb", "54:ee:75"), 1.1, "day", personal=True, wifi=0.6,
        presence=0.75, weekend=0.15,
    ),
    Role(
        "smartphone", 0.17, "BYOD", 30, False,
        (("Apple-iPhone", 0.4), ("Apple-iPad", 0.1), ("Android", 0.25), ("Samsung-Device", 0.15), ("Unknown", 0.1)),
        ("a4:c3:f0", "8c:f5:a3", "dc:a6:32", "f4:0f:24"), 0.8, "day", personal=True, wifi=1.0,
        presence=0.8, weekend=0.3,
    ),
    Role(
        "ip_phone", 0.1, "VoIP_Phones", 20, False,
        (("Cisco-IP-Phone-8845", 0.4), ("Cisco-IP-Phone-7841", 0.4), ("Cisco-IP-Phone", 0.15), ("Unknown", 0.05)),
        ("00:1e:13", "2c:31:24", "5c:83:8f"), 0.7, "office", weekend=0.4,
    ),
    Role(
        "video_endpoint", 0.02, "Video_Endpoints", 20, False,
        (("Cisco-Webex-Room-Device", 0.6), ("Cisco-TelePresence-Device", 0.3), ("Unknown", 0.1)),
        ("00:50:60", "e4:aa:5d"), 1.0, "office", weekend=0.3,
    ),
    Role(
        "printer", 0.035, "Printers", 40, False,
        (("HP-Printer", 0.45), ("Xerox-Device", 0.2), ("Lexmark-Printer", 0.15), ("Canon-Device", 0.15),
         ("Unknown", 0.05)),
        ("3c:2a:f4", "9c:93:4e", "00:21:b7"), 0.6, "office", weekend=0.3,
    ),
    Role(
        "ip_camera", 0.055, "IP_Cameras", 50, False,
        (("Axis-Device", 0.6), ("Hanwha-Device", 0.3), ("Unknown", 0.1)),
        ("ac:cc:8e", "00:40:8c", "00:09:18"), 0.7, "always",
    ),
    Role(
        "badge_reader", 0.02, "Physical_Access", 60, False,
        (("HID-Device", 0.7), ("Mercury-Security-Device", 0.2), ("Unknown", 0.1)),
        ("00:06:8e", "00:1b:19"), 0.5, "always",
    ),
    Role(
        "hvac_controller", 0.02, "Building_Management", 60, False,
        (("Honeywell-Device", 0.4), ("Johnson-Controls-Device", 0.4), ("Unknown", 0.2)),
        ("00:40:84", "00:10:a4"), 0.6, "always",
    ),
    Role(
        "iot_sensor", 0.042, "IoT_Devices", 70, False,
        (("Raspberry-Pi-Device", 0.3), ("Espressif-Device", 0.4), ("Unknown", 0.3)),
        ("b8:27:eb", "24:0a:c4", "84:f3:eb"), 0.4, "always",
    ),
    Role("web_server", 0.015, "Web_Servers", 110, True, _VM_PROFILES, _VM, 3.0, "always"),
    Role("db_server", 0.01, "Database_Servers", 120, True, _VM_PROFILES, _VM, 2.0, "always"),
    Role("file_server", 0.008, "File_Servers", 130, True, _WIN_VM_PROFILES, _VM, 2.0, "always"),
    Role(
        "domain_controller", 0.006, "Network_Services", 100, True, _WIN_VM_PROFILES, _VM, 3.0, "always",
    ),
    Role("dhcp_server", 0.005, "Network_Services", 100, True, _WIN_VM_PROFILES, _VM, 1.5, "always"),
    Role("mail_server", 0.005, "Mail_Servers", 110, True, _WIN_VM_PROFILES, _VM, 3.0, "always"),
    Role(
        "nvr", 0.006, "Video_Recorders", 150, True,
        (("Milestone-NVR", 0.3), ("Microsoft-Workstation", 0.4), ("Unknown", 0.3)),
        ("00:25:90", "3c:ec:ef"), 1.5, "always",
    ),
    Role("print_server", 0.005, "Print_Servers", 130, True, _WIN_VM_PROFILES, _VM, 1.5, "office", weekend=0.4),
    Role(
        "call_manager", 0.005, "Voice_Servers", 140, True,
        (("Cisco-UCM-Device", 0.5), ("VMWare-Device", 0.4), ("Unknown", 0.1)), _VM, 2.5, "always",
    ),
    Role("backup_server", 0.005, "Backup_Servers", 130, True, _WIN_VM_PROFILES, ("00:25:90", "3c:ec:ef"), 2.0, "night"),
    Role(
        "jump_host", 0.008, "Admin_Hosts", 15, False,
        (("Windows11-Workstation", 0.5), ("Windows10-Workstation", 0.3), ("Unknown", 0.2)),
        ("f8:b1:56", "18:66:da"), 1.5, "office", personal=True, presence=0.9, weekend=0.1,
    ),
    Role("monitoring_server", 0.005, "Network_Management", 100, True, _VM_PROFILES, _VM, 3.0, "always"),
    Role(
        "facilities_server", 0.005, "Building_Management", 150, True, _WIN_VM_PROFILES, _VM, 2.0, "always",
    ),
)  # fmt: skip

ROLE_NAMES: tuple[str, ...] = tuple(r.name for r in ROLES)

#: Devices that do a second job too (a DC that also serves DHCP, a print server that shares files):
#: role -> (second role, share of its devices). Such a device spends SECONDARY_SHARE of its rows on it.
SECONDARY: dict[str, tuple[str, float]] = {
    "dhcp_server": ("domain_controller", 0.3),
    "domain_controller": ("dhcp_server", 0.2),
    "print_server": ("file_server", 0.4),
    "file_server": ("print_server", 0.15),
    "web_server": ("db_server", 0.1),
    "db_server": ("web_server", 0.1),
    "nvr": ("file_server", 0.1),
    "facilities_server": ("web_server", 0.2),
    "monitoring_server": ("web_server", 0.2),
    "jump_host": ("monitoring_server", 0.1),
    "workstation": ("jump_host", 0.02),
    "iot_sensor": ("hvac_controller", 0.05),
}
SECONDARY_SHARE = 0.3
ROLE_INDEX = {r.name: i for i, r in enumerate(ROLES)}

#: VLAN -> the first address of its block; a block holds 512k addresses, hosts are numbered in it.
VLAN_BASES: dict[int, str] = {
    10: "10.0.0.0",
    15: "10.8.0.0",
    20: "10.16.0.0",
    30: "10.24.0.0",
    40: "10.32.0.0",
    50: "10.40.0.0",
    60: "10.48.0.0",
    70: "10.56.0.0",
    100: "10.100.0.0",
    110: "172.16.0.0",
    120: "10.108.0.0",
    130: "10.116.0.0",
    140: "10.124.0.0",
    150: "10.132.0.0",
}
WIFI_VLAN = 30

assert abs(sum(r.share for r in ROLES) - 1.0) < 1e-9, "role shares must sum to 1"
assert all(r.vlan in VLAN_BASES for r in ROLES)
assert all(r.sgt in SGT_BY_NAME for r in ROLES)
