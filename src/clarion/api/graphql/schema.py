"""The Query root and the schema with its protective limits (depth, aliases, tokens)."""

from __future__ import annotations

import datetime as dt

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from clarion.analytics.policy import build_matrix
from clarion.api.graphql.clustering import ClusteringMutation, ClusteringQuery
from clarion.api.graphql.context import Context
from clarion.api.graphql.identity import IdentityQuery
from clarion.api.graphql.scalars import SCALARS, Long
from clarion.api.graphql.types import (
    Device,
    DeviceConnection,
    DeviceEdge,
    DeviceFilter,
    PageInfo,
    PolicyCell,
    PolicyMatrix,
    PolicyService,
    SgtInfo,
    Stats,
    Switch,
    day_range,
    decode_cursor,
    encode_cursor,
)
from clarion.config import Settings
from clarion_edge.wire import normalise_mac

Info = strawberry.Info[Context, None]


class UserInputError(GraphQLError):
    """An error in the request itself: shown to the caller, never masked."""


@strawberry.type
class CoreQuery:
    @strawberry.field(description="Totals: devices, switches, FLOWS_TO edges, bytes, packets, flows.")
    async def stats(self, info: Info) -> Stats:
        r = (await info.context.read("query/stats"))[0]
        return Stats(
            devices=int(r["devices"]), switches=int(r["switches"]), flow_edges=Long(int(r["flow_edges"])),
            bytes=Long(int(r["bytes"] or 0)), packets=Long(int(r["packets"] or 0)), flows=Long(int(r["flows"] or 0)),
        )  # fmt: skip

    @strawberry.field(description="One device by MAC (any common spelling: aa:bb.., AA-BB-.., aabb.cc..).")
    async def device(self, info: Info, mac: str) -> Device | None:
        try:
            norm = normalise_mac(mac)
        except ValueError as e:
            raise UserInputError(str(e)) from None
        rows = await info.context.read("query/device_by_mac", {"mac": norm})
        return Device.from_row(rows[0]["device"]) if rows else None

    @strawberry.field(description="Devices in uid order, as a Relay connection (first ≤ the server's page cap).")
    async def devices(
        self, info: Info, first: int = 50, after: str | None = None, filter: DeviceFilter | None = None
    ) -> DeviceConnection:
        cap = info.context.settings.graphql_page_cap
        if not 1 <= first <= cap:
            raise UserInputError(f"first must be between 1 and {cap}, got {first}")
        try:
            start = decode_cursor(after) if after else ""
        except ValueError as e:
            raise UserInputError(str(e)) from None
        f = filter or DeviceFilter()
        rows = await info.context.read(
            "query/devices_page",
            {
                "after": start, "limit": first + 1, "switch_id": f.switch_id, "sgt": f.sgt,
                "kind": f.kind.value if f.kind else None, "local": f.local,
            },
        )  # fmt: skip
        nodes = [Device.from_row(r["device"]) for r in rows[:first]]
        edges = [DeviceEdge(cursor=encode_cursor(n.uid), node=n) for n in nodes]
        return DeviceConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None),
        )

    @strawberry.field(description="Every switch with the number of devices seen behind it.")
    async def switches(self, info: Info) -> list[Switch]:
        rows = await info.context.read("query/switches")
        return [Switch.from_row(r["switch"], int(r["devices"])) for r in rows]

    @strawberry.field(
        description="Observed SGT × SGT traffic over whole UTC days [since, until] (both optional, inclusive)."
    )
    async def policy_matrix(
        self, info: Info, since: dt.date | None = None, until: dt.date | None = None, top_services: int = 10
    ) -> PolicyMatrix:
        if not 1 <= top_services <= 100:
            raise UserInputError(f"topServices must be between 1 and 100, got {top_services}")
        try:
            lo, hi = day_range(since, until)
        except ValueError as e:
            raise UserInputError(str(e)) from None
        rows = await info.context.read("query/policy_matrix", {"day_from": lo, "day_to": hi})
        names = {int(r["value"]): r["name"] for r in await info.context.read("query/sgts")}
        m = build_matrix(rows)
        cells = [
            PolicyCell(
                src_sgt=c.src, dst_sgt=c.dst, bytes=Long(c.bytes), packets=Long(c.packets), flows=Long(c.flows),
                service_count=len(c.services),
                services=[
                    PolicyService(service=s.key, protocol=s.protocol, port=s.port, bytes=Long(s.bytes),
                                  packets=Long(s.packets), flows=Long(s.flows))
                    for s in c.services[:top_services]
                ],
            )
            for c in m.cells
        ]  # fmt: skip
        sgts = [SgtInfo(value=v, name=names.get(v, "Unknown" if v == 0 else None)) for v in m.sgts]
        return PolicyMatrix(since=since, until=until, sgts=sgts, cells=cells)


def _should_mask(error: GraphQLError) -> bool:
    """Mask unexpected errors (they may carry internals); show the caller's own mistakes."""
    original = error.original_error
    if original is None or isinstance(original, UserInputError):
        return False
    return not isinstance(original, GraphQLError)


#: The Query root is merged from one part per concern (core graph, identity, clustering, ...),
#: so each concern keeps its resolvers in its own module.
QUERY_PARTS: tuple[type, ...] = (CoreQuery, IdentityQuery, ClusteringQuery)
MUTATION_PARTS: tuple[type, ...] = (ClusteringMutation,)
Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases),
            lambda: MaxTokensLimiter(max_token_count=2000),
            lambda: MaskErrors(should_mask_error=_should_mask),
        ],
    )
