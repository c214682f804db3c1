"""A real uvicorn server over real HTTP, on the session's embedded FalkorDB, fresh graph per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from clarion.api.app import create_app
from clarion.config import Settings
from clarion.server import BackgroundServer
from clarion.store.falkordb_store import FalkorDBStore

AGENT_TOKEN = "agent-sw1-token-0123456789"
OTHER_AGENT_TOKEN = "agent-sw2-token-0123456789"
READER_TOKEN = "reader-token-0123456789abc"
ADMIN_TOKEN = "admin-token-0123456789abcd"


@dataclass
class Api:
    url: str
    store: FalkorDBStore
    settings: Settings

    def client(self, token: str | None = AGENT_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def graphql(self, query: str, variables: dict[str, object] | None = None, token: str = READER_TOKEN) -> dict:  # type: ignore[type-arg]
        with self.client(token) as c:
            r = c.post("/graphql", json={"query": query, "variables": variables or {}})
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


def make_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "graph_url": None,
        "agent_tokens": f"edge-sw1={AGENT_TOKEN},edge-sw2={OTHER_AGENT_TOKEN}",
        "reader_token": SecretStr(READER_TOKEN),
        "admin_token": SecretStr(ADMIN_TOKEN),
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def api(store: FalkorDBStore) -> Iterator[Api]:
    settings = make_settings(max_edges=1000, max_nodes=1000, max_body_bytes=2_000_000)
    with BackgroundServer(create_app(settings, store)) as server:
        yield Api(server.url, store, settings)
