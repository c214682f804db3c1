"""The ``/api/v1/identity`` body: decoded and validated at the edge, then turned into model records.

Sessions have exactly the shape ``clarion.sources.pxgrid.sink.session_to_json`` emits (unknown session
fields are ignored so a newer pxGrid service can talk to an older server); the top level is strict. Every
error names the JSON path of the offending value.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from clarion.identity.names import canonical_ip
from clarion.sources.model import EgressCell, SecurityGroup, Session, Sgacl

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
SgtValue = Annotated[int, msgspec.Meta(ge=0, le=65535)]
_MAC_PATTERN = r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$"
MacText = Annotated[str, msgspec.Meta(pattern=_MAC_PATTERN)]
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=32_503_680_000_000)]  # up to year 3000
State = Literal["AUTHENTICATING", "AUTHENTICATED", "POSTURED", "STARTED", "DISCONNECTED"]
Source = Literal["ise", "file", "api"]


class SessionIn(msgspec.Struct):
    mac: MacText
    ips: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=64)] = []
    username: Text | None = None
    sgt: SgtValue | None = None
    sgt_name: Name | None = None
    switch_id: Name | None = None
    interface: Name | None = None
    vlan: Annotated[int, msgspec.Meta(ge=1, le=4094)] | None = None
    endpoint_profile: Name | None = None
    state: State = "STARTED"
    timestamp_ms: EpochMs = 0
    ad_groups: Annotated[list[Text], msgspec.Meta(max_length=1000)] = []
    source: Source = "api"


class SecurityGroupIn(msgspec.Struct, forbid_unknown_fields=True):
    value: SgtValue
    name: Name
    ise_id: Name | None = None
    description: Text | None = None


class SgaclIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    aces: Annotated[str, msgspec.Meta(max_length=65_536)] = ""
    ise_id: Name | None = None
    ip_version: Literal["IPV4", "IPV6", "IP_AGNOSTIC", "AGNOSTIC"] = "IP_AGNOSTIC"
    description: Text | None = None


class EgressCellIn(msgspec.Struct, forbid_unknown_fields=True):
    src_sgt: SgtValue
    dst_sgt: SgtValue
    sgacls: Annotated[list[Name], msgspec.Meta(max_length=64)] = []
    default_rule: Literal["NONE", "PERMIT_IP", "DENY_IP"] = "NONE"
    status: Literal["ENABLED", "DISABLED", "MONITOR"] = "ENABLED"
    ise_id: Name | None = None


class IdentityBody(msgspec.Struct, forbid_unknown_fields=True):
    sessions: list[SessionIn] = []
    security_groups: list[SecurityGroupIn] = []
    sgacls: list[SgaclIn] = []
    deleted_sgacls: list[Name] = []
    #: SGT values ISE deleted (pxGrid ``securityGroupTopic`` DELETE); see ``trustsec.apply_trustsec_deletes``.
    deleted_security_groups: list[SgtValue] = []
    egress_cells: list[EgressCellIn] = []
    #: The egress cells are ISE's whole matrix: cells ISE no longer has are removed (after the merge).
    egress_complete: bool = False

    def rows(self) -> int:
        return (
            len(self.sessions) + len(self.security_groups) + len(self.sgacls) + len(self.egress_cells)
            + len(self.deleted_sgacls) + len(self.deleted_security_groups)
        )  # fmt: skip


class PayloadError(ValueError):
    """A value that decoded but is not acceptable; ``path`` is its JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} - at `{path}`")
        self.path = path
        self.message = message


@dataclass(slots=True)
class IdentityBatch:
    """Validated model records, ready for ``clarion.identity.service.apply_identity``."""

    sessions: list[Session] = field(default_factory=list)
    security_groups: list[SecurityGroup] = field(default_factory=list)
    sgacls: list[Sgacl] = field(default_factory=list)
    deleted_sgacls: list[str] = field(default_factory=list)
    deleted_security_groups: list[int] = field(default_factory=list)
    egress_cells: list[EgressCell] = field(default_factory=list)
    egress_complete: bool = False


_SEP = re.compile(r"[:\-.]")
DECODER = msgspec.json.Decoder(IdentityBody)


def _mac(text: str) -> str:
    if len(text) == 17 and text.count(":") == 5:  # already aa:bb:cc:dd:ee:ff (the pattern checked the digits)
        return text.lower()
    hexdigits = _SEP.sub("", text).lower()
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


def to_batch(body: IdentityBody, now_ms: int | None = None) -> IdentityBatch:
    """Check what msgspec cannot (IP syntax) and build model records; raises PayloadError with the path.

    A session without a time (``timestamp_ms`` 0 or absent) is taken as seen now, when it was received.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    sessions = []
    for i, s in enumerate(body.sessions):
        ips: list[str] = []
        for j, raw in enumerate(s.ips):
            ip = canonical_ip(raw)
            if ip is None:
                raise PayloadError(f"$.sessions[{i}].ips[{j}]", f"{raw[:64]!r} is not an IPv4 or IPv6 address")
            if ip not in ips:
                ips.append(ip)
        sessions.append(
            Session(
                mac=_mac(s.mac), ips=tuple(ips), username=s.username, sgt=s.sgt, sgt_name=s.sgt_name,
                switch_id=s.switch_id, interface=s.interface, vlan=s.vlan, endpoint_profile=s.endpoint_profile,
                state=s.state, timestamp_ms=s.timestamp_ms or now, ad_groups=tuple(s.ad_groups), source=s.source,
            )
        )  # fmt: skip
    return IdentityBatch(
        sessions=sessions,
        security_groups=[
            SecurityGroup(value=g.value, name=g.name, ise_id=g.ise_id, description=g.description)
            for g in body.security_groups
        ],
        sgacls=[
            Sgacl(name=a.name, aces=a.aces, ise_id=a.ise_id, ip_version=a.ip_version, description=a.description)
            for a in body.sgacls
        ],
        deleted_sgacls=list(body.deleted_sgacls),
        deleted_security_groups=list(body.deleted_security_groups),
        egress_cells=[
            EgressCell(
                src_sgt=c.src_sgt,
                dst_sgt=c.dst_sgt,
                sgacls=tuple(c.sgacls),
                default_rule=c.default_rule,
                status=c.status,
                ise_id=c.ise_id,
            )
            for c in body.egress_cells
        ],
        egress_complete=body.egress_complete,
    )
