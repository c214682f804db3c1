"""Fixtures for the agent runtime tests: a real HTTP ingest server with the server's contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from edge_test_server import GraphServer


@pytest.fixture
def graph_server() -> Iterator[GraphServer]:
    server = GraphServer().start()
    yield server
    server.stop()
