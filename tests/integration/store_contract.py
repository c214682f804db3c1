"""The behaviour every graph store must show, written once and run against each adapter.

A test module imports these tests (``from tests.integration.store_contract import *``) and
provides a ``graph_store`` fixture: a fresh, schema-ready, empty store.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest

from clarion.ingest.merger import SeqConflictError, merge
from clarion.ingest.transform import prepare
from clarion.store.port import BatchConflictError, GraphStore
from tests.helpers import T0, mac, small_graph

__all__ = [
    "test_a_second_batch_record_rolls_the_whole_write_back",
    "test_batch_is_applied_with_exact_counters",
    "test_bulk_read_rows_matches_read",
    "test_clear_empties_the_graph_and_keeps_it_usable",
    "test_conflicting_replay_is_refused_and_changes_nothing",
    "test_connected_to_and_sgt_are_recorded_and_nodes_are_dicts",
    "test_flows_are_bucketed_by_utc_day",
    "test_it_is_a_graph_store",
    "test_next_seq_adds_to_counters_on_the_same_day",
    "test_racing_copies_of_one_batch_apply_once",
    "test_same_batch_three_times_counts_once",
    "test_schema_is_idempotent",
]

EMPTY = {"devices": 0, "switches": 0, "flow_edges": 0, "bytes": 0, "packets": 0, "flows": 0}


def totals(store: GraphStore) -> dict[str, int]:
    row = store.read("query/stats")[0]
    return {k: int(v or 0) for k, v in row.items()}


def test_it_is_a_graph_store(graph_store: GraphStore) -> None:
    assert isinstance(graph_store, GraphStore)
    assert graph_store.dialect in ("falkordb", "neo4j")
    assert graph_store.read("query/ping") == [{"ok": 1}]


def test_schema_is_idempotent(graph_store: GraphStore) -> None:
    graph_store.ensure_schema()
    graph_store.ensure_schema()
    assert totals(graph_store) == EMPTY


def test_batch_is_applied_with_exact_counters(graph_store: GraphStore) -> None:
    result = merge(graph_store, small_graph())
    assert result.applied
    assert not result.duplicate
    assert totals(graph_store) == {
        "devices": 4, "switches": 1, "flow_edges": 3, "bytes": 6300, "packets": 33, "flows": 6,
    }  # fmt: skip


def test_same_batch_three_times_counts_once(graph_store: GraphStore) -> None:
    g = small_graph()
    first = merge(graph_store, g)
    after_one = totals(graph_store)
    again = [merge(graph_store, g) for _ in range(2)]
    assert first.applied
    assert all(r.duplicate and not r.applied for r in again)
    assert totals(graph_store) == after_one


def test_conflicting_replay_is_refused_and_changes_nothing(graph_store: GraphStore) -> None:
    merge(graph_store, small_graph(seq=7))
    before = totals(graph_store)
    with pytest.raises(SeqConflictError, match="seq 7"):
        merge(graph_store, small_graph(seq=7, bytes_=999_999))
    assert totals(graph_store) == before


def test_a_second_batch_record_rolls_the_whole_write_back(graph_store: GraphStore) -> None:
    """The unique (agent_id, seq) constraint turns a racing replay into a conflict; nothing is half applied."""
    batch = prepare(small_graph(seq=3), applied_at_ms=T0)
    graph_store.write("merge/batch", batch.params)
    before = totals(graph_store)
    with pytest.raises(BatchConflictError):
        graph_store.write("merge/batch", batch.params)
    assert totals(graph_store) == before


def test_racing_copies_of_one_batch_apply_once(graph_store: GraphStore) -> None:
    g = small_graph(seq=11)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: merge(graph_store, g), range(4)))
    assert sum(r.applied for r in results) == 1
    assert sum(r.duplicate for r in results) == 3
    assert totals(graph_store)["bytes"] == 6300


def test_next_seq_adds_to_counters_on_the_same_day(graph_store: GraphStore) -> None:
    merge(graph_store, small_graph(seq=1))
    merge(graph_store, small_graph(seq=2))
    t = totals(graph_store)
    assert (t["flow_edges"], t["bytes"], t["flows"]) == (3, 12600, 12)


def test_flows_are_bucketed_by_utc_day(graph_store: GraphStore) -> None:
    g1 = small_graph(seq=1)
    next_day = msgspec.structs.replace(
        g1, seq=2, window=msgspec.structs.replace(g1.window, start=T0 + 86_400_000, end=T0 + 86_460_000), digest=None
    ).sealed()
    merge(graph_store, g1)
    merge(graph_store, next_day)
    day = T0 // 86_400_000
    rows = graph_store.read("query/device_peers_out", {"uid": mac(1), "day_from": 0, "day_to": day, "sample": 5})
    assert {(r["protocol"], r["port"]): int(r["bytes"]) for r in rows} == {(6, 9100): 1000, (6, 443): 5000}
    assert totals(graph_store)["flow_edges"] == 6


def test_connected_to_and_sgt_are_recorded_and_nodes_are_dicts(graph_store: GraphStore) -> None:
    merge(graph_store, small_graph())
    dev = graph_store.read("query/device_by_mac", {"mac": mac(2)})[0]["device"]
    assert isinstance(dev, dict)
    assert (dev["switch_id"], dev["interface"], dev["vlan"], dev["sgt"]) == ("sw1", "Gi1/0/2", 20, 10)
    assert [int(r["value"]) for r in graph_store.read("query/sgts")] == [4, 10]


def test_bulk_read_rows_matches_read(graph_store: GraphStore) -> None:
    merge(graph_store, small_graph())
    header, rows = graph_store.read_rows("examples/top_talkers")
    assert header == ["src", "src_sgt", "dst", "dst_sgt", "bytes", "services"]
    assert rows[0][:4] == [mac(1), 4, "198.51.100.7", None]
    assert int(rows[0][4]) == 5000  # sum() is a float on FalkorDB: bulk statements use toInteger()
    assert graph_store.read_rows("query/sgts") == (["value", "name"], [[4, None], [10, None]])


def test_clear_empties_the_graph_and_keeps_it_usable(graph_store: GraphStore) -> None:
    merge(graph_store, small_graph())
    graph_store.clear()
    assert totals(graph_store) == EMPTY
    assert merge(graph_store, small_graph()).applied  # the batch record went too, and the schema stayed
