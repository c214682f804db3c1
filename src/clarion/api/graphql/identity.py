"""GraphQL identity: ``Device.identity`` (user, AD groups, SGT, profile, port, IP bindings) and ``user(name)``.

Every fact carries its source and time. Lookups go through per-request DataLoaders (one statement per
batch of devices or users), kept beside the request's context so listing 500 devices is two reads, not 1,000.
"""

from __future__ import annotations

import weakref
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.dataloader import DataLoader

from clarion.api.graphql.context import Context
from clarion.api.graphql.scalars import Long
from clarion.identity.names import normalise_username
from clarion.store.port import Row

if TYPE_CHECKING:
    from clarion.api.graphql.types import Device

Info = strawberry.Info[Context, None]
DeviceRef = Annotated["Device", strawberry.lazy("clarion.api.graphql.types")]


class IdentityInputError(GraphQLError):
    """A caller's mistake (shown, never masked)."""


@strawberry.enum
class GroupVia(Enum):
    DIRECT = "direct"
    NESTED = "nested"


@strawberry.type(description="An AD group a user belongs to, directly or through nested groups.")
class GroupMembership:
    sid: str
    name: str | None
    via: GroupVia
    depth: int = strawberry.field(description="1 for a direct membership, 2 for a group of a group, ...")


@strawberry.type(description="A user assigned to a device by a session (ISE, NAC file, API).")
class DeviceUser:
    username: str
    display_name: str | None
    source: str | None
    since: Long | None
    last_seen: Long | None
    until: Long | None = strawberry.field(description="End of the last session (DISCONNECTED); null while active.")

    @strawberry.field(description="AD groups of this user, transitive (direct and nested).")
    async def groups(self, info: Info) -> list[GroupMembership]:
        return await _loaders(info.context).groups.load(self.username)


@strawberry.type(description="An SGT a source assigned to the device.")
class SgtAssignment:
    value: int
    name: str | None
    source: str | None
    since: Long | None
    last_seen: Long | None
    until: Long | None


@strawberry.type(description="MAC `mac` held IP `ip` from `since` to `until` (null: still holds it).")
class IpBindingInfo:
    ip: str
    mac: str
    since: Long | None
    until: Long | None
    last_seen: Long | None
    source: str | None


@strawberry.type(description="A switch port the device was seen on.")
class PortInfo:
    switch_id: str
    interface: str | None
    vlan: int | None
    source: str | None
    first_seen: Long | None
    last_seen: Long | None


@strawberry.type(description="Who and what a device is, with where each fact came from and when.")
class DeviceIdentity:
    user: DeviceUser | None = strawberry.field(description="The current user (latest open session), if any.")
    users: list[DeviceUser] = strawberry.field(description="Every user ever assigned, newest first.")
    sgt: SgtAssignment | None = strawberry.field(description="The SGT the device has now.")
    sgts: list[SgtAssignment] = strawberry.field(description="Every SGT assignment, newest first.")
    endpoint_profile: str | None
    profile_source: str | None
    session_state: str | None
    identity_source: str | None
    identity_updated: Long | None = strawberry.field(description="Time of the newest identity event applied.")
    hostname: str | None
    operating_system: str | None
    ise_groups: list[str] = strawberry.field(
        description="Group names ISE reported for the session's user (pxGrid UserGroup), as ISE spells them."
    )
    ports: list[PortInfo]
    ip_bindings: list[IpBindingInfo] = strawberry.field(
        description="IPs this device held; for an IP-only endpoint, the MACs that held its IP (correlation in time)."
    )

    @strawberry.field(description="AD groups of the current user, transitive, with how each is reached.")
    async def ad_groups(self, info: Info) -> list[GroupMembership]:
        if self.user is None:
            return []
        return await _loaders(info.context).groups.load(self.user.username)


@strawberry.type(description="A user with its AD attributes, groups and devices.")
class UserIdentity:
    username: str
    display_name: str | None
    upn: str | None
    mail: str | None
    sid: str | None
    enabled: bool | None
    source: str | None
    first_seen: Long | None
    last_seen: Long | None
    device_uids: strawberry.Private[list[str]]

    @strawberry.field(description="AD groups, transitive (direct and nested).")
    async def groups(self, info: Info) -> list[GroupMembership]:
        return await _loaders(info.context).groups.load(self.username)

    @strawberry.field(description="Devices this user was assigned to, most recently seen first.")
    async def devices(self, info: Info) -> list[DeviceRef]:
        from clarion.api.graphql.types import Device

        rows = await info.context.read("query/identity_device_nodes", {"uids": self.device_uids})
        by_uid = {r["device"]["uid"]: r["device"] for r in rows}
        return [Device.from_row(by_uid[u]) for u in self.device_uids if u in by_uid]


def _newest(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda x: (x.until is None, x.last_seen or 0), reverse=True)


def _confirmed(last_seen: Any, until: Any, confirmed: Any) -> Any:
    """An open interval is current as of the device's last confirmation (events that change nothing only
    move ``Device.identity_ts``), so its effective last_seen is the later of the two."""
    if until is not None or confirmed is None:
        return last_seen
    return max(last_seen or 0, confirmed)


def build_identity(row: Row) -> DeviceIdentity:
    """One ``query/identity_devices`` row → DeviceIdentity (pure: used by the resolver and tests)."""
    d = row["device"]
    conf = d.get("identity_ts")
    users = _newest(
        [
            DeviceUser(
                username=u[0],
                display_name=u[1],
                source=u[2],
                since=u[3],
                last_seen=_confirmed(u[4], u[5], conf),
                until=u[5],
            )
            for u in row["users"]
            if u[0] is not None
        ]
    )
    sgts = _newest(
        [
            SgtAssignment(
                value=int(t[0]),
                name=t[1],
                source=t[2],
                since=t[3],
                last_seen=_confirmed(t[4], t[5], conf) if t[2] == d.get("identity_source") else t[4],
                until=t[5],
            )
            for t in row["sgts"]
            if t[0] is not None
        ]
    )
    bindings = sorted(
        (
            IpBindingInfo(
                ip=b[0],
                mac=b[5],
                since=b[1],
                until=b[2],
                last_seen=_confirmed(b[3], b[2], conf) if b[5] == d.get("uid") else b[3],
                source=b[4],
            )
            for b in row["bindings"]
            if b[0] is not None
        ),
        key=lambda b: (b.since or 0, b.ip),
    )
    ports = sorted(
        (
            PortInfo(switch_id=p[0], interface=p[1], vlan=p[2], source=p[3], first_seen=p[4], last_seen=p[5])
            for p in row["ports"]
            if p[0] is not None
        ),
        key=lambda p: -(p.last_seen or 0),
    )
    current_user = users[0] if users and users[0].until is None else None
    current_sgt = next((s for s in sgts if s.value == d.get("sgt") and s.until is None), None)
    current_sgt = current_sgt or next((s for s in sgts if s.value == d.get("sgt")), None)
    return DeviceIdentity(
        user=current_user, users=users, sgt=current_sgt, sgts=sgts, endpoint_profile=d.get("profile"),
        profile_source=d.get("profile_source"), session_state=d.get("session_state"),
        identity_source=d.get("identity_source"), identity_updated=d.get("identity_ts"), hostname=d.get("hostname"),
        operating_system=d.get("operating_system"), ise_groups=list(d.get("ise_groups") or []), ports=ports,
        ip_bindings=bindings,
    )  # fmt: skip


@strawberry.type(description="Where an SGT's definition came from, since when, and whether ISE deleted it.")
class SgtOrigin:
    source: str | None = strawberry.field(description="The source that first reported this tag (ise, netflow, ...).")
    name_source: str | None = strawberry.field(description="'ise' when ISE's TrustSec configuration names it.")
    first_seen: Long | None = strawberry.field(description="When the tag first appeared in the graph (epoch ms).")
    ise_since: Long | None = strawberry.field(description="Since when ISE defines it (epoch ms).")
    ise_deleted_at: Long | None = strawberry.field(
        description="When ISE deleted its definition; the tag stays while devices still carry it. Null: not deleted."
    )


class IdentityLoaders:
    """Per-request batching of identity lookups."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.devices: DataLoader[str, Row | None] = DataLoader(load_fn=self._devices)
        self.groups: DataLoader[str, list[GroupMembership]] = DataLoader(load_fn=self._groups)
        self.sgts: DataLoader[int, SgtOrigin | None] = DataLoader(load_fn=self._sgts)

    async def _sgts(self, values: list[int]) -> list[SgtOrigin | None]:
        rows = await self.ctx.read("query/identity_trustsec_sgts", {"values": list(values)})
        found = {
            int(r["value"]): SgtOrigin(
                source=r.get("source"), name_source=r.get("name_source"), first_seen=r.get("first_seen"),
                ise_since=r.get("ise_since"), ise_deleted_at=r.get("ise_deleted_at"),
            )
            for r in rows
        }  # fmt: skip
        return [found.get(v) for v in values]

    async def _devices(self, uids: list[str]) -> list[Row | None]:
        rows = await self.ctx.read("query/identity_devices", {"uids": list(uids)})
        by_uid = {r["uid"]: r for r in rows}
        return [by_uid.get(u) for u in uids]

    async def _groups(self, usernames: list[str]) -> list[list[GroupMembership]]:
        rows = await self.ctx.read("query/identity_user_groups", {"usernames": list(usernames)})
        out: dict[str, list[GroupMembership]] = {u: [] for u in usernames}
        for r in rows:
            depth = int(r["depth"])
            via = GroupVia.DIRECT if depth == 1 else GroupVia.NESTED
            out[r["username"]].append(GroupMembership(sid=r["sid"], name=r["group_name"], via=via, depth=depth))
        return [sorted(out[u], key=lambda g: (g.depth, g.name or "", g.sid)) for u in usernames]


_LOADERS: weakref.WeakKeyDictionary[Context, IdentityLoaders] = weakref.WeakKeyDictionary()


def _loaders(ctx: Context) -> IdentityLoaders:
    loaders = _LOADERS.get(ctx)
    if loaders is None:
        loaders = _LOADERS[ctx] = IdentityLoaders(ctx)
    return loaders


async def sgt_origin(info: Info, value: int) -> SgtOrigin | None:
    """The resolver behind ``SgtInfo.origin`` (one read per request for all SGTs asked)."""
    return await _loaders(info.context).sgts.load(value)


async def device_identity(info: Info, uid: str) -> DeviceIdentity | None:
    """The resolver behind ``Device.identity``."""
    row = await _loaders(info.context).devices.load(uid)
    return build_identity(row) if row is not None else None


@strawberry.type
class IdentityQuery:
    @strawberry.field(
        description="A user by account name (any spelling: alice, CORP\\alice, alice@corp.local), with AD groups "
        "and devices; null when unknown."
    )
    async def user(self, info: Info, name: str) -> UserIdentity | None:
        username = normalise_username(name)
        if username is None:
            raise IdentityInputError(f"{name[:80]!r} is not a user name (a MAC or host/... names a device)")
        rows = await info.context.read("query/identity_user", {"username": username})
        if not rows:
            return None
        u = rows[0]["user"]
        uids = [r["device"]["uid"] for r in rows if r.get("device")]
        return UserIdentity(
            username=u["username"], display_name=u.get("display_name"), upn=u.get("upn"), mail=u.get("mail"),
            sid=u.get("sid"), enabled=u.get("enabled"), source=u.get("source"), first_seen=u.get("first_seen"),
            last_seen=u.get("last_seen"), device_uids=uids,
        )  # fmt: skip
