"""Mount GraphQL at /graphql: GraphiQL page open, every operation needs a reader token."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status
from strawberry.fastapi import GraphQLRouter

from clarion.api.auth import Principal, principal_from_header
from clarion.api.graphql.context import Context
from clarion.api.graphql.schema import build_schema
from clarion.config import Settings


def _is_ide_page(request: Request) -> bool:
    return request.method == "GET" and "query" not in request.query_params


async def require_reader(request: Request) -> Principal | None:
    if _is_ide_page(request):
        return None
    principal = principal_from_header(request.app.state.tokens, request.headers.get("authorization"))
    if not principal.may_read():
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="GraphQL needs a reader or admin token")
    request.app.state.metrics.graphql_requests.inc()
    return principal


async def get_context(request: Request, principal: Principal | None = Depends(require_reader)) -> Context:  # noqa: B008
    return Context(
        store=request.app.state.store, settings=request.app.state.settings, principal=principal,
        jobs=getattr(request.app.state, "jobs", None),
    )  # fmt: skip


def graphql_router(settings: Settings) -> GraphQLRouter[Context, None]:
    return GraphQLRouter(build_schema(settings), context_getter=get_context, graphql_ide="graphiql")
