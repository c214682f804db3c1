"""GraphQL object types. Names are stable: tooling and later work build on them."""

from __future__ import annotations

import base64
import datetime as dt
from enum import Enum
from typing import Any

import strawberry

from clarion.api.graphql.context import Context
from clarion.api.graphql.identity import DeviceIdentity, SgtOrigin, device_identity, sgt_origin
from clarion.api.graphql.scalars import Long
from clarion.ingest.transform import service_key

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def day_range(since: dt.date | None, until: dt.date | None) -> tuple[int, int]:
    lo = day_number(since) if since else 0
    hi = day_number(until) if until else 10**7
    if lo > hi:
        raise ValueError(f"since ({since}) is after until ({until})")
    return lo, hi


@strawberry.enum
class DeviceKind(Enum):
    MAC = "mac"
    IP = "ip"


@strawberry.type(description="Totals over the whole graph.")
class Stats:
    devices: int
    switches: int
    flow_edges: Long = strawberry.field(description="FLOWS_TO relationships (one per pair, service and day).")
    bytes: Long
    packets: Long
    flows: Long


@strawberry.type
class Switch:
    switch_id: str
    name: str | None
    mgmt_ip: str | None
    last_seen: Long | None
    devices: int | None = None

    @classmethod
    def from_row(cls, s: dict[str, Any], devices: int | None = None) -> Switch:
        return cls(
            switch_id=s["switch_id"], name=s.get("name"), mgmt_ip=s.get("mgmt_ip"), last_seen=s.get("last_seen"),
            devices=devices,
        )  # fmt: skip


@strawberry.type(description="Traffic of one device on one service, summed over its peers.")
class ServicePeers:
    service: str
    protocol: int
    port: int
    peers: int
    bytes: Long
    packets: Long
    flows: Long
    sample_peers: list[str] = strawberry.field(description="Up to five peer uids (MAC or IP).")

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> ServicePeers:
        return cls(
            service=service_key(int(r["protocol"]), int(r["port"])), protocol=int(r["protocol"]),
            port=int(r["port"]), peers=int(r["peers"]), bytes=Long(int(r["bytes"])), packets=Long(int(r["packets"])),
            flows=Long(int(r["flows"])), sample_peers=list(r["sample_peers"]),
        )  # fmt: skip


@strawberry.type(description="An endpoint: keyed by MAC, or by IP for endpoints whose MAC is unknown.")
class Device:
    uid: str
    mac: str | None
    ip: str | None
    kind: DeviceKind
    local: bool | None
    sgt: int | None
    interface: str | None
    vlan: int | None
    first_seen: Long | None
    last_seen: Long | None
    switch_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, d: dict[str, Any]) -> Device:
        return cls(
            uid=d["uid"], mac=d.get("mac"), ip=d.get("ip"), kind=DeviceKind(d.get("kind", "mac")),
            local=d.get("local"), sgt=d.get("sgt"), interface=d.get("interface"), vlan=d.get("vlan"),
            first_seen=d.get("first_seen"), last_seen=d.get("last_seen"), switch_id=d.get("switch_id"),
        )  # fmt: skip

    @strawberry.field(description="The switch this device was last seen behind.")
    async def switch(self, info: strawberry.Info[Context, None]) -> Switch | None:
        if self.switch_id is None:
            return None
        row = await info.context.switch_loader.load(self.switch_id)
        return Switch.from_row(row) if row else None

    @strawberry.field(description="Who and what this device is: user, AD groups, SGT, profile, port, IP bindings.")
    async def identity(self, info: strawberry.Info[Context, None]) -> DeviceIdentity | None:
        return await device_identity(info, self.uid)

    @strawberry.field(description="Services this device uses as a client, with the peers that offer them.")
    async def outbound(
        self, info: strawberry.Info[Context, None], since: dt.date | None = None, until: dt.date | None = None
    ) -> list[ServicePeers]:
        return await _peers(info, "query/device_peers_out", self.uid, since, until)

    @strawberry.field(description="Services this device offers, with the peers that use them.")
    async def inbound(
        self, info: strawberry.Info[Context, None], since: dt.date | None = None, until: dt.date | None = None
    ) -> list[ServicePeers]:
        return await _peers(info, "query/device_peers_in", self.uid, since, until)


async def _peers(
    info: strawberry.Info[Context, None], stmt: str, uid: str, since: dt.date | None, until: dt.date | None
) -> list[ServicePeers]:
    lo, hi = day_range(since, until)
    rows = await info.context.read(stmt, {"uid": uid, "day_from": lo, "day_to": hi, "sample": 5})
    return [ServicePeers.from_row(r) for r in rows]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class DeviceEdge:
    cursor: str
    node: Device


@strawberry.type(description="A Relay connection over devices in a stable order (by uid).")
class DeviceConnection:
    edges: list[DeviceEdge]
    page_info: PageInfo


def encode_cursor(uid: str) -> str:
    return base64.urlsafe_b64encode(f"device:{uid}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not raw.startswith("device:"):
        raise ValueError(f"invalid cursor {cursor!r}: pass an endCursor or cursor returned by devices()")
    return raw.removeprefix("device:")


@strawberry.input
class DeviceFilter:
    switch_id: str | None = None
    sgt: int | None = None
    kind: DeviceKind | None = None
    local: bool | None = None


@strawberry.type
class SgtInfo:
    value: int
    name: str | None

    @strawberry.field(description="Where this SGT's definition came from, since when, and whether ISE deleted it.")
    async def origin(self, info: strawberry.Info[Context, None]) -> SgtOrigin | None:
        return await sgt_origin(info, self.value)


@strawberry.type
class PolicyService:
    service: str
    protocol: int
    port: int
    bytes: Long
    packets: Long
    flows: Long


@strawberry.type(description="Observed traffic from one SGT to another (0 = devices without an SGT).")
class PolicyCell:
    src_sgt: int
    dst_sgt: int
    bytes: Long
    packets: Long
    flows: Long
    service_count: int
    services: list[PolicyService] = strawberry.field(description="The top services by bytes (see topServices).")


@strawberry.type
class PolicyMatrix:
    since: dt.date | None
    until: dt.date | None
    sgts: list[SgtInfo]
    cells: list[PolicyCell]
