"""The Neo4j adapter: exactly-once merging against a real Neo4j 5 (testcontainers), errors without one.

Neo4j runs only where a Docker engine is reachable; elsewhere those tests skip and say why
(the Cypher itself is still checked by tests/unit/test_cypher_lint.py, and the same behaviour
runs against the embedded FalkorDB). The tests without a server run everywhere.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from clarion.config import Settings
from clarion.store.neo4j_store import Neo4jStore, _plain
from clarion.store.port import StoreUnavailableError
from tests.integration.store_contract import *  # noqa: F403 - the shared store contract runs here

pytestmark = pytest.mark.integration

NEO4J_IMAGE = os.environ.get("CLARION_TEST_NEO4J_IMAGE", "neo4j:5")


def docker_unavailable() -> str | None:
    """Why no Docker engine can be used here, or None; asks the engine itself, with a short timeout."""
    try:
        import docker  # type: ignore[import-untyped]  # no stubs; the client testcontainers uses

        client = docker.from_env(timeout=5)
    except Exception as e:  # the client raises DockerException, or OSError-ish errors, when there is no engine
        return f"Docker is not available: {e}"
    try:
        client.ping()
    except Exception as e:
        return f"Docker is not available: {e}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="module")
def neo4j_server() -> Iterator[Neo4jStore]:
    """A real Neo4j 5 in a container, schema applied once."""
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(reason)
    from testcontainers.community.neo4j import Neo4jContainer

    with Neo4jContainer(NEO4J_IMAGE) as container:
        store = Neo4jStore(container.get_connection_url(), user=container.username, password=container.password)
        store.ensure_schema()
        yield store
        store.close()


@pytest.fixture
def neo4j(neo4j_server: Neo4jStore) -> Neo4jStore:
    """The server's only database, emptied (Neo4j Community has one database)."""
    neo4j_server.clear()
    return neo4j_server


@pytest.fixture
def graph_store(neo4j: Neo4jStore) -> Neo4jStore:
    """The store contract (tests/integration/store_contract.py) runs against a real Neo4j 5."""
    return neo4j


# -- without a server ------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("scheme", ["neo4j", "bolt"])
def test_an_unreachable_server_is_unavailable_naming_the_url_not_the_password(scheme: str, closed_port: int) -> None:
    url = f"{scheme}://127.0.0.1:{closed_port}"
    store = Neo4jStore(url, user="neo4j", password="s3cret-Pa55", retry_s=0.5)
    try:
        for call in (lambda: store.read("query/ping"), lambda: store.write("query/ping"), store.ensure_schema):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailableError) as err:
                call()
            assert time.monotonic() - t0 < 30
            assert url in str(err.value)
            assert "s3cret" not in str(err.value)
    finally:
        store.close()


def test_parameters_are_checked_before_anything_is_sent(closed_port: int) -> None:
    store = Neo4jStore(f"bolt://127.0.0.1:{closed_port}", user="neo4j", password="x", retry_s=0.5)
    try:
        with pytest.raises(ValueError, match=r"missing \['agent_id', 'seq'\]"):
            store.read("query/batch_lookup", {})
        with pytest.raises(ValueError, match=r"undeclared \['oops'\]"):
            store.read("query/ping", {"oops": 1})
    finally:
        store.close()


def test_from_settings_uses_the_neo4j_settings() -> None:
    settings = Settings(
        graph_url="neo4j+s://graph.example.invalid:7687",
        neo4j_user="clarion",
        neo4j_password="pw-from-env",
        neo4j_database="segmentation",
    )
    store = Neo4jStore.from_settings(settings)
    try:
        assert store.url == "neo4j+s://graph.example.invalid:7687"
        assert store.database == "segmentation"
        assert "pw-from-env" not in repr(vars(store))
    finally:
        store.close()


@pytest.mark.parametrize("scheme", ["neo4j+s", "bolt"])
def test_credentials_in_the_url_are_refused_without_echoing_them(scheme: str) -> None:
    with pytest.raises(ValueError, match="set CLARION_NEO4J_USER and CLARION_NEO4J_PASSWORD") as err:
        Neo4jStore(f"{scheme}://ops:hunter22@graph.example.invalid:7687", user="neo4j", password="x")
    assert "hunter22" not in str(err.value)
    assert f"{scheme}://graph.example.invalid:7687" in str(err.value)


@pytest.mark.parametrize("url", ["http://localhost:7474", "falkordb://localhost:6379", "localhost:7687"])
def test_a_url_that_is_not_bolt_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="expected neo4j://host:7687"):
        Neo4jStore(url, user="neo4j", password="x")


def test_driver_values_become_plain_python() -> None:
    from datetime import UTC, date, datetime

    from neo4j.spatial import CartesianPoint
    from neo4j.time import Date, DateTime, Duration

    row = {
        "when": DateTime(2026, 11, 2, 0, 0, 0, tzinfo=UTC),
        "day": Date(2026, 11, 2),
        "took": Duration(seconds=90),
        "at": CartesianPoint((1.0, 2.0)),
        "nested": [{"d": Date(2026, 1, 1)}],
    }
    assert _plain(row) == {
        "when": datetime(2026, 11, 2, tzinfo=UTC),
        "day": date(2026, 11, 2),
        "took": "PT1M30S",
        "at": {"srid": 7203, "coordinates": [1.0, 2.0]},
        "nested": [{"d": date(2026, 1, 1)}],
    }
