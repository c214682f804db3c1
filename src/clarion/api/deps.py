"""FastAPI dependencies: settings, store and metrics come from the app, never from globals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from clarion.api.metrics import Metrics
from clarion.config import Settings
from clarion.store.port import GraphStore


def get_app_settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def get_store(request: Request) -> GraphStore:
    store: GraphStore = request.app.state.store
    return store


def get_metrics(request: Request) -> Metrics:
    m: Metrics = request.app.state.metrics
    return m


AppSettings = Annotated[Settings, Depends(get_app_settings)]
Store = Annotated[GraphStore, Depends(get_store)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
