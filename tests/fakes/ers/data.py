"""Seed data: ISE's default SGTs, SGACLs and the ANY-ANY cell with their real, install-independent UUIDs."""

from __future__ import annotations

from typing import Any

SUFFIX = "-8c01-11e6-996c-525400b48521"
ANY_ID = "92bb1950" + SUFFIX
ANY_ANY_CELL_ID = "92c1a900" + SUFFIX
PERMIT_IP_ID = "92951ac0" + SUFFIX
DENY_IP_ID = "92919850" + SUFFIX

# name -> (id prefix, tag value); ERS lists these 16, ANY exists but is not listed
DEFAULT_SGTS: dict[str, tuple[str, int]] = {
    "Unknown": ("92adf9f0", 0),
    "TrustSec_Devices": ("947832a0", 2),
    "Network_Services": ("93e1bf00", 3),
    "Employees": ("93ad6890", 4),
    "Contractors": ("9370d4c0", 5),
    "Guests": ("93c66ed0", 6),
    "Production_Users": ("9437a730", 7),
    "Developers": ("93837260", 8),
    "Auditors": ("934557f0", 9),
    "Point_of_Sale_Systems": ("940facd0", 10),
    "Production_Servers": ("9423aa00", 11),
    "Development_Servers": ("9396d350", 12),
    "Test_Servers": ("94621290", 13),
    "PCI_Servers": ("93f91790", 14),
    "BYOD": ("935d4cc0", 15),
    "Quarantined_Systems": ("944b2f30", 255),
}


def default_sgts() -> list[dict[str, Any]]:
    out = []
    for name, (prefix, value) in DEFAULT_SGTS.items():
        description = "Auditor Security Group" if name == "Auditors" else f"{name.replace('_', ' ')} Security Group"
        out.append(
            {
                "id": prefix + SUFFIX,
                "name": name,
                "description": description,
                "value": value,
                "generationId": "0",
                "propogateToApic": False,
            }
        )
    return out


def any_sgt() -> dict[str, Any]:
    return {"id": ANY_ID, "name": "ANY", "description": "Any Security Group", "value": 65535, "generationId": "0"}


def default_sgacls() -> list[dict[str, Any]]:
    # the built-ins omit ipVersion on real ISE 3.0
    return [
        {"id": PERMIT_IP_ID, "name": "Permit IP", "description": "Permit IP SGACL", "generationId": "0",
         "aclcontent": "permit ip"},
        {"id": DENY_IP_ID, "name": "Deny IP", "description": "Deny IP SGACL", "generationId": "0",
         "aclcontent": "deny ip"},
        {"id": "9ff61ac0" + SUFFIX, "name": "Permit_IP_Log", "description": "Permit IP with logging",
         "generationId": "0", "ipVersion": "IP_AGNOSTIC", "aclcontent": "permit ip log"},
        {"id": "9ff89840" + SUFFIX, "name": "Deny_IP_Log", "description": "Deny IP with logging",
         "generationId": "0", "ipVersion": "IP_AGNOSTIC", "aclcontent": "deny ip log"},
    ]  # fmt: skip


def default_cells() -> list[dict[str, Any]]:
    return [
        {
            "id": ANY_ANY_CELL_ID,
            "name": "ANY-ANY",
            "description": "Default egress rule",
            "sourceSgtId": ANY_ID,
            "destinationSgtId": ANY_ID,
            "matrixCellStatus": "ENABLED",
            "defaultRule": "PERMIT_IP",
            "sgacls": [PERMIT_IP_ID],
        }
    ]
