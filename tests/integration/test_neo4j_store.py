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
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest

from clarion.config import Settings
from clarion.ingest.merger import SeqConflictError, merge
from clarion.ingest.transform import prepare
from clarion.store.neo4j_store import Neo4jStore, _plain
from clarion.store.port import BatchConflictError, GraphStore, StoreUnavailableError
from tests.helpers import T0, mac, small_graph

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


def totals(store: GraphStore) -> dict[str, int]:
    row = store.read("query/stats")[0]
    return {k: int(v or 0) for k, v in row.items()}


# -- against a real Neo4j 5 ------------------------------------------------------------------


def test_it_is_a_graph_store(neo4j: Neo4jStore) -> None:
    assert isinstance(neo4j, GraphStore)
    assert neo4j.dialect == "neo4j"
    assert neo4j.read("query/ping") == [{"ok": 1}]


def test_schema_is_idempotent(neo4j: Neo4jStore) -> None:
    neo4j.ensure_schema()
    neo4j.ensure_schema()


def test_batch_is_applied_with_exact_counters(neo4j: Neo4jStore) -> None:
    result = merge(neo4j, small_graph())
    assert result.applied
    assert not result.duplicate
    assert totals(neo4j) == {
        "devices": 4, "switches": 1, "flow_edges": 3, "bytes": 6300, "packets": 33, "flows": 6,
    }  # fmt: skip


def test_same_batch_three_times_counts_once(neo4j: Neo4jStore) -> None:
    g = small_graph()
    first = merge(neo4j, g)
    after_one = totals(neo4j)
    again = [merge(neo4j, g) for _ in range(2)]
    assert first.applied
    assert all(r.duplicate and not r.applied for r in again)
    assert totals(neo4j) == after_one


def test_conflicting_replay_is_refused_and_changes_nothing(neo4j: Neo4jStore) -> None:
    merge(neo4j, small_graph(seq=7))
    before = totals(neo4j)
    with pytest.raises(SeqConflictError, match="seq 7"):
        merge(neo4j, small_graph(seq=7, bytes_=999_999))
    assert totals(neo4j) == before


def test_a_second_batch_record_rolls_the_whole_transaction_back(neo4j: Neo4jStore) -> None:
    """The unique (agent_id, seq) constraint turns a racing replay into a conflict, and nothing is half applied."""
    batch = prepare(small_graph(seq=3), applied_at_ms=T0)
    neo4j.write("merge/batch", batch.params)
    before = totals(neo4j)
    with pytest.raises(BatchConflictError, match="Batch"):
        neo4j.write("merge/batch", batch.params)
    assert totals(neo4j) == before


def test_racing_copies_of_one_batch_apply_once(neo4j: Neo4jStore) -> None:
    g = small_graph(seq=11)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: merge(neo4j, g), range(4)))
    assert sum(r.applied for r in results) == 1
    assert sum(r.duplicate for r in results) == 3
    assert totals(neo4j)["bytes"] == 6300


def test_next_seq_adds_to_counters_on_the_same_day(neo4j: Neo4jStore) -> None:
    merge(neo4j, small_graph(seq=1))
    merge(neo4j, small_graph(seq=2))
    t = totals(neo4j)
    assert (t["flow_edges"], t["bytes"], t["flows"]) == (3, 12600, 12)


def test_flows_are_bucketed_by_utc_day(neo4j: Neo4jStore) -> None:
    g1 = small_graph(seq=1)
    next_day = msgspec.structs.replace(
        g1, seq=2, window=msgspec.structs.replace(g1.window, start=T0 + 86_400_000, end=T0 + 86_460_000), digest=None
    ).sealed()
    merge(neo4j, g1)
    merge(neo4j, next_day)
    rows = neo4j.read("query/device_peers_out", {"uid": mac(1), "day_from": 0, "day_to": T0 // 86_400_000, "sample": 5})
    assert {(r["protocol"], r["port"]): int(r["bytes"]) for r in rows} == {(6, 9100): 1000, (6, 443): 5000}
    assert totals(neo4j)["flow_edges"] == 6


def test_nodes_come_back_as_property_dicts(neo4j: Neo4jStore) -> None:
    merge(neo4j, small_graph())
    dev = neo4j.read("query/device_by_mac", {"mac": mac(2)})[0]["device"]
    assert isinstance(dev, dict)
    assert (dev["switch_id"], dev["interface"], dev["vlan"], dev["sgt"]) == ("sw1", "Gi1/0/2", 20, 10)
    assert [int(r["value"]) for r in neo4j.read("query/sgts")] == [4, 10]


def test_clear_empties_the_graph(neo4j: Neo4jStore) -> None:
    merge(neo4j, small_graph())
    neo4j.clear()
    assert totals(neo4j) == {"devices": 0, "switches": 0, "flow_edges": 0, "bytes": 0, "packets": 0, "flows": 0}


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
