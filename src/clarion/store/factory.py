"""Choose the store from one setting: ``CLARION_GRAPH_URL`` (unset means embedded FalkorDB)."""

from __future__ import annotations

from clarion.config import Settings
from clarion.store.port import GraphStore


def open_store(settings: Settings) -> GraphStore:
    url = settings.graph_url
    if url is None:
        from clarion.store.falkordb_store import FalkorDBStore

        return FalkorDBStore.embedded(settings.data_dir, settings.graph_name, timeout_s=settings.store_timeout_s)
    if url.startswith(("falkordb://", "falkordbs://", "redis://")):
        from clarion.store.falkordb_store import FalkorDBStore

        pw = settings.falkordb_password.get_secret_value() if settings.falkordb_password else None
        return FalkorDBStore.from_url(url, settings.graph_name, password=pw, timeout_s=settings.store_timeout_s)
    from clarion.store.neo4j_store import Neo4jStore

    return Neo4jStore.from_settings(settings)
