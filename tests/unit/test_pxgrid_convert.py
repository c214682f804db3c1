"""ISE session JSON → Session: every field mapping, with the reference's example session as input."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.sources.model import SecurityGroup, Session, Sgacl
from clarion.sources.pxgrid.convert import (
    ConversionError,
    canonical_ip,
    format_timestamp,
    normalise_mac,
    parse_timestamp_ms,
    security_group_from_ise,
    session_from_ise,
    sgacl_from_ise,
    user_groups_from_ise,
)

# The realistic example of shared/reference §1.8 (an 802.1X user with an SGT), verbatim in the fields that matter.
REFERENCE_SESSION: dict[str, Any] = {
    "timestamp": "2024-05-01T10:15:30.123Z",
    "state": "STARTED",
    "userName": "alice",
    "callingStationId": "AA:BB:CC:00:11:22",
    "calledStationId": "00:11:22:33:44:55",
    "auditSessionId": "0A0000010000002803DBE3C1",
    "macAddress": "AA:BB:CC:00:11:22",
    "ipAddresses": ["10.10.20.31"],
    "nasIpAddress": "10.10.0.2",
    "nasPortId": "GigabitEthernet1/0/12",
    "nasIdentifier": "sw-access-1",
    "nasPortType": "Ethernet",
    "ctsSecurityGroup": "Employees",
    "endpointProfile": "Windows10-Workstation",
    "postureStatus": "Compliant",
    "adUserResolvedIdentities": "alice@corp.local",
    "providers": ["None"],
    "isMachineAuthentication": "false",
    "mdmRegistered": False,
}


def test_reference_session_converts_exactly() -> None:
    s = session_from_ise(REFERENCE_SESSION, {"Employees": 4}, {"alice": ("corp.local/Users/Eng",)})
    assert s == Session(
        mac="aa:bb:cc:00:11:22",
        ips=("10.10.20.31",),
        username="alice",
        sgt=4,
        sgt_name="Employees",
        switch_id="10.10.0.2",
        interface="GigabitEthernet1/0/12",
        vlan=None,
        endpoint_profile="Windows10-Workstation",
        state="STARTED",
        timestamp_ms=1_714_558_530_123,
        ad_groups=("corp.local/Users/Eng",),
        source="ise",
    )


def test_unknown_sgt_name_keeps_the_name_without_a_number() -> None:
    s = session_from_ise({**REFERENCE_SESSION, "ctsSecurityGroup": "NewGroup"}, {"Employees": 4})
    assert (s.sgt, s.sgt_name) == (None, "NewGroup")
    no_sgt = dict(REFERENCE_SESSION)
    del no_sgt["ctsSecurityGroup"]
    assert session_from_ise(no_sgt, {"Employees": 4}).sgt_name is None


def test_offsets_are_respected() -> None:
    assert parse_timestamp_ms("2020-10-02T16:41:03.984-04:00") == parse_timestamp_ms("2020-10-02T20:41:03.984Z")
    assert parse_timestamp_ms("2020-10-02T20:41:03.984Z") == 1_601_671_263_984
    assert parse_timestamp_ms("2020-10-02T20:41:03.984") == 1_601_671_263_984  # naive = UTC
    assert format_timestamp(1_601_671_263_984) == "2020-10-02T20:41:03.984Z"
    assert format_timestamp(1_601_671_263_004) == "2020-10-02T20:41:03.004Z"


@pytest.mark.parametrize("raw", ["AA-BB-CC-00-11-22", "aabb.cc00.1122", "AABBCC001122", "aa:bb:cc:00:11:22"])
def test_mac_forms(raw: str) -> None:
    assert normalise_mac(raw) == "aa:bb:cc:00:11:22"


def test_mac_falls_back_to_calling_station_id_and_ips_are_canonical() -> None:
    raw = {**REFERENCE_SESSION, "ipAddresses": ["10.10.20.31", "FE80::0001", "10.10.20.31", "2001:DB8::1"]}
    del raw["macAddress"]
    s = session_from_ise(raw)
    assert s.mac == "aa:bb:cc:00:11:22"
    assert s.ips == ("10.10.20.31", "fe80::1", "2001:db8::1")


def test_switch_id_prefers_nas_ip_then_device_name_then_nas_identifier() -> None:
    raw = dict(REFERENCE_SESSION)
    del raw["nasIpAddress"]
    assert session_from_ise({**raw, "networkDeviceName": "sw1"}).switch_id == "sw1"
    assert session_from_ise(raw).switch_id == "sw-access-1"


def test_disconnected_session_without_ip_and_missing_timestamp() -> None:
    raw = {"macAddress": "AA:BB:CC:00:11:22", "state": "DISCONNECTED"}
    s = session_from_ise(raw, now_ms=42)
    assert (s.state, s.ips, s.timestamp_ms, s.username) == ("DISCONNECTED", (), 42, None)


def test_vlan_from_tunnel_private_group_id() -> None:
    assert session_from_ise({**REFERENCE_SESSION, "tunnelPrivateGroupId": "(tag=0) 120"}).vlan == 120
    assert session_from_ise({**REFERENCE_SESSION, "tunnelPrivateGroupId": "DATA_VLAN"}).vlan is None


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"macAddress": None, "callingStationId": None}, "neither macAddress nor callingStationId"),
        ({"macAddress": "zz:zz"}, "is not a MAC"),
        ({"ipAddresses": "10.0.0.1"}, "must be an array"),
        ({"ipAddresses": ["10.0.0.300"]}, "not an IPv4 or IPv6"),
        ({"ipAddresses": [7]}, "is not a string"),
        ({"timestamp": "yesterday"}, "not ISO-8601"),
        ({"state": "DANCING"}, "is not one of"),
        ({"userName": 5}, "userName must be a string"),
        ({"nasPortId": "x" * 257}, "nasPortId is 257 characters long; at most 256"),
        ({"userName": "u" * 1025}, "userName is 1025 characters long; at most 1024"),
        ({"nasIpAddress": "not-an-ip"}, "nasIpAddress"),
    ],
)
def test_bad_fields_are_named(patch: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in {**REFERENCE_SESSION, **patch}.items() if v is not None}
    with pytest.raises(ConversionError, match=message):
        session_from_ise(raw)


def test_not_an_object() -> None:
    with pytest.raises(ConversionError, match="must be a JSON object"):
        session_from_ise(["x"])


def test_trustsec_objects() -> None:
    raw = {"id": "0500", "name": "hackers", "description": "", "tag": 16}
    assert security_group_from_ise(raw) == SecurityGroup(value=16, name="hackers", ise_id="0500", description=None)
    with pytest.raises(ConversionError, match="tag 70000"):
        security_group_from_ise({"name": "x", "tag": 70000})
    acl = sgacl_from_ise({"id": "a1", "name": "Web", "acl": "permit tcp dst eq 443", "ipVersion": "IPV4"})
    assert acl == Sgacl(name="Web", aces="permit tcp dst eq 443", ise_id="a1", ip_version="IPV4")
    with pytest.raises(ConversionError, match="ipVersion 'IPV5' is not one of"):
        sgacl_from_ise({"name": "Web", "acl": "", "ipVersion": "IPV5"})


def test_user_groups() -> None:
    doc = {
        "userGroups": [{"userName": "Alice", "groups": [{"name": "corp.local/Users/Eng", "type": "ACTIVE_DIRECTORY"}]}]
    }
    assert user_groups_from_ise(doc) == {"alice": ("corp.local/Users/Eng",)}
    with pytest.raises(ConversionError, match="no userName"):
        user_groups_from_ise({"userGroups": [{"groups": []}]})


@given(st.ip_addresses())
def test_canonical_ip_agrees_with_ipaddress(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert canonical_ip(str(ip), "x") == str(ip)
    assert canonical_ip(ip.exploded.upper(), "x") == str(ip)


@pytest.mark.parametrize("bad", ["010.0.0.1", "256.1.1.1", "1.2.3", "1.2.3.4.5", ""])
def test_canonical_ip_rejects(bad: str) -> None:
    with pytest.raises(ConversionError, match="is not an IPv4 or IPv6 address"):
        canonical_ip(bad, "x")
