"""ISE pxGrid session JSON → ``clarion.sources.model.Session``, validated field by field.

ISE omits absent attributes, gives the SGT by *name* (``ctsSecurityGroup``) and timestamps in ISO-8601 with an offset;
the model wants normalised MACs, canonical IPs, the SGT number and epoch milliseconds UTC.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from clarion.sources.model import SecurityGroup, Session, Sgacl

STATES = frozenset({"AUTHENTICATING", "AUTHENTICATED", "POSTURED", "STARTED", "DISCONNECTED"})
MAX_IPS = 64
MAX_TEXT = 1024  # userName, AD group names (the server's /api/v1/identity limits, so it never refuses a session)
MAX_NAME = 256  # SGT name, switch id, interface, endpoint profile
IP_VERSIONS = frozenset({"IPV4", "IPV6", "IP_AGNOSTIC"})
_MAC_HEX = re.compile(r"^[0-9a-f]{12}$")
_COLON_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_MAC_SEP = re.compile(r"[:\-.\s]")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # no leading zeros: already canonical text


class ConversionError(ValueError):
    """A session (or TrustSec object) from ISE that cannot become a model record; the message names the field."""


@lru_cache(maxsize=65536)  # endpoints repeat across events; this is the hot path of the stream
def normalise_mac(value: str) -> str:
    """``AA-BB-CC-00-11-22``, ``aabb.cc00.1122`` or ``AA:BB:...`` → ``aa:bb:cc:00:11:22``."""
    if _COLON_MAC.fullmatch(value):  # ISE's own form: only the case changes
        return value.lower()
    hexdigits = _MAC_SEP.sub("", value).lower()
    if not _MAC_HEX.match(hexdigits):
        raise ConversionError(f"macAddress {value[:40]!r} is not a MAC (12 hex digits, separators : - . allowed)")
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


def parse_timestamp_ms(value: str) -> int:
    """ISO-8601 (``2020-10-02T16:41:03.984-04:00`` or ``...Z``) → epoch ms UTC; a naive time is taken as UTC."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConversionError(f"timestamp {value[:60]!r} is not ISO-8601 (e.g. 2024-05-01T10:15:30.123Z)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    seconds = dt.timestamp()
    return int(seconds * 1000 + (0.5 if seconds >= 0 else -0.5))


def format_timestamp(ms: int) -> str:
    """Epoch ms → the ISO-8601 form ISE takes in ``startTimestamp`` (UTC, milliseconds, ``Z``)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _text(raw: Mapping[str, Any], key: str, limit: int = MAX_NAME) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConversionError(f"{key} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ConversionError(f"{key} is {len(value)} characters long; at most {limit} are accepted")
    return value


@lru_cache(maxsize=65536)
def canonical_ip(value: str, what: str) -> str:
    """Canonical text of an IPv4/IPv6 address (cached: switch and endpoint addresses repeat)."""
    if _CANONICAL_V4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ConversionError(f"{what} {value[:60]!r} is not an IPv4 or IPv6 address") from exc


def _ips(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("ipAddresses")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConversionError(f"ipAddresses must be an array of strings, got {type(value).__name__}")
    if len(value) > MAX_IPS:
        raise ConversionError(f"ipAddresses has {len(value)} entries; at most {MAX_IPS} are accepted")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConversionError(f"ipAddresses entry {item!r} is not a string")
        text = canonical_ip(item, "ipAddresses entry")
        if text not in out:
            out.append(text)
    return tuple(out)


def _vlan(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("tunnelPrivateGroupId") or raw.get("vlan")
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().removeprefix("(tag=0) ").strip()
    else:
        return None
    # ISE may carry a VLAN name here instead of a number; only a number is a VLAN id the graph can use.
    return int(text) if text.isdigit() and 1 <= int(text) <= 4094 else None


def session_from_ise(
    raw: Any,
    sgt_by_name: Mapping[str, int] | None = None,
    groups_by_user: Mapping[str, tuple[str, ...]] | None = None,
    now_ms: int = 0,
) -> Session:
    """Convert one session object; raises ``ConversionError`` naming the offending field.

    The MAC comes from ``macAddress`` or else ``callingStationId``; ``switch_id`` prefers ``nasIpAddress`` (what the
    switch exports NetFlow from), then ``networkDeviceName``, then ``nasIdentifier``. A missing timestamp takes
    ``now_ms`` (the time of receipt).
    """
    if not isinstance(raw, dict):
        raise ConversionError(f"a session must be a JSON object, got {type(raw).__name__}")
    mac_text = _text(raw, "macAddress") or _text(raw, "callingStationId")
    if mac_text is None:
        raise ConversionError("session has neither macAddress nor callingStationId")
    mac = normalise_mac(mac_text)
    state = (_text(raw, "state") or "STARTED").upper()
    if state not in STATES:
        raise ConversionError(f"state {state[:40]!r} is not one of {', '.join(sorted(STATES))}")
    ts_text = _text(raw, "timestamp")
    timestamp_ms = parse_timestamp_ms(ts_text) if ts_text else now_ms
    sgt_name = _text(raw, "ctsSecurityGroup")
    username = _text(raw, "userName", MAX_TEXT)
    switch_id = _text(raw, "nasIpAddress") or _text(raw, "networkDeviceName") or _text(raw, "nasIdentifier")
    if switch_id is not None and raw.get("nasIpAddress"):
        switch_id = canonical_ip(switch_id, "nasIpAddress")
    groups: tuple[str, ...] = ()
    if username and groups_by_user:
        groups = groups_by_user.get(username.lower(), ())
    return Session(
        mac=mac,
        ips=_ips(raw),
        username=username,
        sgt=(sgt_by_name or {}).get(sgt_name) if sgt_name else None,
        sgt_name=sgt_name,
        switch_id=switch_id,
        interface=_text(raw, "nasPortId"),
        vlan=_vlan(raw),
        endpoint_profile=_text(raw, "endpointProfile"),
        state=state,
        timestamp_ms=timestamp_ms,
        ad_groups=groups,
        source="ise",
    )


def security_group_from_ise(raw: Any) -> SecurityGroup:
    """pxGrid's ``{"id","name","description","tag"}`` (``tag`` is ERS's ``value``) → ``SecurityGroup``."""
    if not isinstance(raw, dict):
        raise ConversionError(f"a securityGroup must be a JSON object, got {type(raw).__name__}")
    name, tag = raw.get("name"), raw.get("tag")
    if not isinstance(name, str) or not name:
        raise ConversionError("securityGroup has no name")
    if not isinstance(tag, int) or isinstance(tag, bool) or not 0 <= tag <= 65535:
        raise ConversionError(f"securityGroup {name!r} has tag {tag!r}; a tag is an integer 0..65535")
    if len(name) > MAX_NAME:
        raise ConversionError(f"securityGroup name is {len(name)} characters long; at most {MAX_NAME} are accepted")
    return SecurityGroup(value=tag, name=name, ise_id=_text(raw, "id"), description=_text(raw, "description", MAX_TEXT))


def sgacl_from_ise(raw: Any) -> Sgacl:
    """pxGrid's SGACL object (``acl`` holds the ACE text) → ``Sgacl``."""
    if not isinstance(raw, dict):
        raise ConversionError(f"a securityGroupAcl must be a JSON object, got {type(raw).__name__}")
    name, acl = raw.get("name"), raw.get("acl", "")
    if not isinstance(name, str) or not name:
        raise ConversionError("securityGroupAcl has no name")
    if not isinstance(acl, str) or len(acl) > 65_536:
        raise ConversionError(f"securityGroupAcl {name[:60]!r}: acl must be a string of at most 65536 characters")
    if len(name) > MAX_NAME:
        raise ConversionError(f"securityGroupAcl name is {len(name)} characters long; at most {MAX_NAME} are accepted")
    ip_version = (_text(raw, "ipVersion") or "IP_AGNOSTIC").upper()
    if ip_version not in IP_VERSIONS:
        raise ConversionError(
            f"securityGroupAcl {name!r}: ipVersion {ip_version[:20]!r} is not one of {sorted(IP_VERSIONS)}"
        )
    return Sgacl(
        name=name,
        aces=acl,
        ise_id=_text(raw, "id"),
        ip_version=ip_version,
        description=_text(raw, "description", MAX_TEXT),
    )


def user_groups_from_ise(raw: Any) -> dict[str, tuple[str, ...]]:
    """``{"userGroups": [{"userName", "groups": [{"name","type"}]}]}`` → lower-cased user → group names."""
    if not isinstance(raw, dict) or not isinstance(raw.get("userGroups", []), list):
        raise ConversionError('user groups must look like {"userGroups": [...]}')
    out: dict[str, tuple[str, ...]] = {}
    for entry in raw.get("userGroups", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("userName"), str):
            raise ConversionError("a userGroups entry has no userName")
        names = [
            g["name"]
            for g in entry.get("groups") or []
            if isinstance(g, dict) and isinstance(g.get("name"), str) and 0 < len(g["name"]) <= MAX_TEXT
        ]
        out[entry["userName"].lower()] = tuple(names[:1000])
    return out
