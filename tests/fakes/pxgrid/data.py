"""Realistic ISE session objects (the documented field set of the reference, §1.8) for the fake to publish."""

from __future__ import annotations

import datetime as dt
from typing import Any

DEFAULT_SGTS = {
    "Unknown": 0,
    "TrustSec_Devices": 2,
    "Network_Services": 3,
    "Employees": 4,
    "Contractors": 5,
    "Guests": 6,
    "Production_Users": 7,
    "Developers": 8,
    "Auditors": 9,
    "Point_of_Sale_Systems": 10,
    "Production_Servers": 11,
    "Development_Servers": 12,
    "Test_Servers": 13,
    "PCI_Servers": 14,
    "BYOD": 15,
    "Quarantined_Systems": 255,
    "ANY": 65535,
}


def iso(ms: int, offset_minutes: int = 0) -> str:
    """Epoch ms → ISE's ISO-8601 with milliseconds and an offset (``Z`` for UTC)."""
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes))
    t = dt.datetime.fromtimestamp(ms / 1000, tz=tz)
    text = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return text + f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


def mac_of(i: int) -> str:
    return "AA:BB:CC:" + ":".join(f"{(i >> s) & 0xFF:02X}" for s in (16, 8, 0))


def session(
    i: int,
    ts_ms: int,
    *,
    state: str = "STARTED",
    sgt: str | None = "Employees",
    user: str | None = None,
    offset_minutes: int = 0,
    switch: str = "10.10.0.2",
    ip: bool = True,
) -> dict[str, Any]:
    """An 802.1X session for endpoint ``i`` (MAC ``AA:BB:CC:xx:xx:xx``, IP ``10.20.x.y``)."""
    mac = mac_of(i)
    name = user or f"user{i}"
    s: dict[str, Any] = {
        "timestamp": iso(ts_ms, offset_minutes),
        "state": state,
        "userName": name,
        "callingStationId": mac,
        "calledStationId": "00:11:22:33:44:55",
        "auditSessionId": f"0A000001{i:016X}",
        "macAddress": mac,
        "ipAddresses": [f"10.20.{(i >> 8) & 0xFF}.{i & 0xFF}"],
        "nasIpAddress": switch,
        "nasPortId": f"GigabitEthernet1/0/{i % 48 + 1}",
        "nasIdentifier": "sw-access-1",
        "nasPortType": "Ethernet",
        "endpointProfile": "Windows10-Workstation",
        "postureStatus": "Compliant",
        "adNormalizedUser": name,
        "adUserDomainName": "corp.local",
        "adUserNetBiosName": "CORP",
        "adUserResolvedIdentities": f"{name}@corp.local",
        "adUserResolvedDns": f"CN={name},OU=Users,DC=corp,DC=local",
        "adUserSamAccountName": name,
        "providers": ["None"],
        "endpointCheckResult": "none",
        "identitySourcePortStart": 0,
        "identitySourcePortEnd": 0,
        "identitySourcePortFirst": 0,
        "isMachineAuthentication": "false",
        "serviceType": "Framed",
        "networkDeviceProfileName": "Cisco",
        "radiusFlowType": "Wired802_1x",
        "selectedAuthzProfiles": ["Employee_Access"],
        "mdmRegistered": False,
        "mdmCompliant": False,
        "mdmDiskEncrypted": False,
        "mdmJailBroken": False,
        "mdmPinLocked": False,
    }
    if sgt is not None:
        s["ctsSecurityGroup"] = sgt
    if not ip:  # e.g. a MAB endpoint before DHCP: only sessionTopicAll carries it
        del s["ipAddresses"]
    return s
