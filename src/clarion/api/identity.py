"""``POST /api/v1/identity``: sessions, SGT names, SGACLs, matrix cells and ISE's TrustSec deletes from the pxGrid
service or a NAC feed.

Validated whole before anything is written (422 naming the field path, 413 over the limits); admins and
``identity`` tokens (the pxGrid service's least-privilege role) may post.
"""

from __future__ import annotations

import re

import msgspec
from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from clarion.api.auth import CurrentPrincipal, Role
from clarion.api.deps import AppSettings, Store
from clarion.api.ingest import BodyTooLargeError, _error, read_limited_body
from clarion.identity.payload import DECODER, PayloadError, to_batch
from clarion.identity.service import apply_identity
from clarion.store.port import StoreUnavailableError

router = APIRouter(prefix="/api/v1", tags=["identity"])

_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `(?P<path>[^`]*)`$", re.DOTALL)
WRITERS = frozenset({Role.ADMIN, Role.IDENTITY})


@router.post(
    "/identity",
    summary="Merge identity: sessions (as the pxGrid service sends them), security groups, SGACLs, matrix cells",
    responses={
        200: {"description": "merged (idempotent: the same body again changes nothing)"},
        401: {"description": "no or unknown token"},
        403: {"description": "the token may not write identity (admin or identity tokens only)"},
        413: {"description": "body or row count over the server's limits"},
        422: {"description": "invalid body; `detail.path` names the field"},
        503: {"description": "the graph store is unavailable; re-sending the same body is safe"},
    },
)
async def post_identity(
    request: Request, principal: CurrentPrincipal, settings: AppSettings, store: Store
) -> JSONResponse:
    if principal.role not in WRITERS:
        return _error(status.HTTP_403_FORBIDDEN, f"a {principal.role.value} token may not write identity", "$")
    try:
        raw = await read_limited_body(request, settings.max_body_bytes)
    except BodyTooLargeError:
        return _error(
            413, f"body is larger than the limit of {settings.max_body_bytes} bytes; send fewer sessions per request",
            limit_bytes=settings.max_body_bytes,
        )  # fmt: skip
    try:
        body = DECODER.decode(raw)
    except msgspec.ValidationError as e:
        m = _AT_PATH.match(str(e))
        return _error(422, m.group("msg") if m else str(e), m.group("path") if m else "$")
    except msgspec.DecodeError as e:
        return _error(422, f"body is not valid JSON: {e}", "$")
    if body.rows() > settings.max_nodes:
        return _error(
            413, f"body has {body.rows()} rows (sessions, security groups, SGACLs, cells); the limit is "
            f"{settings.max_nodes} per request: split it", max_rows=settings.max_nodes,
        )  # fmt: skip
    try:
        batch = to_batch(body)
    except PayloadError as e:
        return _error(422, e.message, e.path)
    try:
        result = await run_in_threadpool(apply_identity, store, batch)
    except StoreUnavailableError as e:  # the sender retries 5xx: every statement is idempotent
        return _error(503, f"the graph store is unavailable, retry later: {e}", "$")
    return JSONResponse(result.as_json())
