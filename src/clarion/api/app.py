"""``create_app(settings)``: the FastAPI application with its lifespan.

The store is opened once per process in the lifespan (or injected by tests) and closed at exit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clarion import __version__
from clarion.api.auth import TokenRegistry
from clarion.api.graphql.router import graphql_router
from clarion.api.identity import router as identity_router
from clarion.api.ingest import router as ingest_router
from clarion.api.metrics import Metrics
from clarion.config import Settings
from clarion.ingest.followup import IdentityFollowUp
from clarion.jobs.runner import JobRunner
from clarion.store.factory import open_store
from clarion.store.port import GraphStore

log = logging.getLogger(__name__)


def create_app(settings: Settings, store: GraphStore | None = None) -> FastAPI:
    """Build the app. With ``store`` given, the caller owns it; otherwise the lifespan opens it."""
    tokens = TokenRegistry.from_settings(settings)
    if tokens.empty:
        log.warning("no API tokens configured: every protected endpoint will answer 401 (see docs/operations.md)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        app.state.store = store if store is not None else await run_in_threadpool(open_store, settings)
        app.state.jobs = JobRunner(timeout_s=settings.job_timeout_s)
        app.state.followup = IdentityFollowUp(app.state.store)
        try:
            await run_in_threadpool(app.state.store.ensure_schema)
            yield
        finally:
            app.state.jobs.close()
            await run_in_threadpool(app.state.followup.close)
            if owned:
                await run_in_threadpool(app.state.store.close)

    app = FastAPI(
        title="Clarion",
        version=__version__,
        summary="Graph-centric network segmentation analytics for Cisco TrustSec",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.metrics = Metrics.create()
    app.include_router(ingest_router)
    app.include_router(identity_router)
    app.include_router(graphql_router(settings), prefix="/graphql")

    @app.get("/healthz", tags=["ops"], summary="Liveness and store reachability (no token needed)")
    async def healthz(request: Request) -> JSONResponse:
        st: GraphStore = request.app.state.store
        try:
            await run_in_threadpool(st.read, "query/ping", {})
        except Exception as e:
            return JSONResponse({"status": "degraded", "store": st.dialect, "error": str(e)}, status_code=503)
        return JSONResponse({"status": "ok", "store": st.dialect, "version": __version__})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        m: Metrics = request.app.state.metrics
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    return app
