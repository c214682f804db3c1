"""``POST /api/v1/graphs``: validate → transform → merge exactly once.

Every rejection says what was wrong and where; nothing is written unless the whole batch is.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from clarion.api.auth import CurrentPrincipal
from clarion.api.deps import AppMetrics, AppSettings, Store
from clarion.ingest.merger import SeqConflictError, merge
from clarion.store.port import StoreUnavailableError
from clarion_edge import wire

router = APIRouter(prefix="/api/v1", tags=["ingest"])

_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `(?P<path>[^`]*)`$", re.DOTALL)


def _error(code: int, error: str, path: str | None = None, **extra: Any) -> JSONResponse:
    detail: dict[str, Any] = {"error": error}
    if path is not None:
        detail["path"] = path
    detail.update(extra)
    return JSONResponse({"detail": detail}, status_code=code)


class BodyTooLargeError(Exception):
    pass


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (before reading it all) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/graphs",
    summary="Apply one EdgeGraph (exactly once per agent_id and seq)",
    responses={
        200: {"description": "applied, or an exact replay (`duplicate: true`) that changed nothing"},
        401: {"description": "no or unknown token"},
        403: {"description": "the token may not write as this agent_id"},
        409: {"description": "this (agent_id, seq) was applied before with other content"},
        413: {"description": "body, nodes or edges over the server's limits"},
        422: {"description": "invalid EdgeGraph; `detail.path` names the field"},
        503: {"description": "the graph store is unavailable; nothing was written, retry later"},
    },
)
async def post_graph(
    request: Request,
    principal: CurrentPrincipal,
    settings: AppSettings,
    store: Store,
    metrics: AppMetrics,
) -> JSONResponse:
    try:
        body = await read_limited_body(request, settings.max_body_bytes)
    except BodyTooLargeError:
        metrics.batches.labels("too_large").inc()
        return _error(
            413, f"body is larger than the limit of {settings.max_body_bytes} bytes; send smaller windows",
            limit_bytes=settings.max_body_bytes,
        )  # fmt: skip
    try:
        graph = _DECODER.decode(body)
    except msgspec.ValidationError as e:
        metrics.batches.labels("invalid").inc()
        m = _AT_PATH.match(str(e))
        return _error(422, m.group("msg") if m else str(e), m.group("path") if m else "$")
    except msgspec.DecodeError as e:
        metrics.batches.labels("invalid").inc()
        return _error(422, f"body is not valid JSON: {e}", "$")
    if len(graph.nodes) > settings.max_nodes or len(graph.edges) > settings.max_edges:
        metrics.batches.labels("too_large").inc()
        return _error(
            413,
            f"batch has {len(graph.nodes)} nodes and {len(graph.edges)} edges; the limits are "
            f"{settings.max_nodes} nodes and {settings.max_edges} edges per batch: split the window",
            max_nodes=settings.max_nodes, max_edges=settings.max_edges,
        )  # fmt: skip
    try:
        wire.validate(graph)
    except wire.WireError as e:
        metrics.batches.labels("invalid").inc()
        return _error(422, e.detail, e.path)
    if not principal.may_write_as(graph.agent_id):
        metrics.batches.labels("forbidden").inc()
        return _error(
            status.HTTP_403_FORBIDDEN,
            f"this token belongs to agent {principal.agent_id!r} and may not write as {graph.agent_id!r}"
            if principal.agent_id else f"a {principal.role.value} token may not post graphs",
            "$.agent_id",
        )  # fmt: skip
    try:
        with metrics.merge_seconds.time():
            result = await run_in_threadpool(merge, store, graph)
    except SeqConflictError as e:
        metrics.batches.labels("conflict").inc()
        return _error(409, str(e), "$.seq", stored_digest=e.stored, digest=e.given)
    except StoreUnavailableError as e:
        metrics.batches.labels("store_unavailable").inc()
        return _error(503, f"the graph store is unavailable, nothing was written; retry later ({e})")
    if result.duplicate:
        metrics.batches.labels("duplicate").inc()
    else:
        metrics.batches.labels("applied").inc()
        metrics.flow_edges.inc(result.batch.n_flows_rows)
        request.app.state.followup.submit(graph)  # bindings and correlation, off the request path
    return JSONResponse(result.as_json())


_DECODER = msgspec.json.Decoder(wire.EdgeGraph)
