"""Exactly-once merging into the real embedded FalkorDB."""

from __future__ import annotations

import msgspec
import pytest

from clarion.ingest.merger import SeqConflictError, merge
from clarion.store.falkordb_store import FalkorDBStore
from tests.helpers import T0, mac, small_graph

pytestmark = pytest.mark.integration


def totals(store: FalkorDBStore) -> dict[str, int]:
    row = store.read("query/stats")[0]
    return {k: int(v or 0) for k, v in row.items()}


def test_batch_is_applied_with_exact_counters(store: FalkorDBStore) -> None:
    result = merge(store, small_graph())
    assert result.applied
    assert not result.duplicate
    assert totals(store) == {
        "devices": 4, "switches": 1, "flow_edges": 3, "bytes": 6300, "packets": 33, "flows": 6,
    }  # fmt: skip


def test_same_batch_three_times_counts_once(store: FalkorDBStore) -> None:
    g = small_graph()
    first = merge(store, g)
    after_one = totals(store)
    again = [merge(store, g) for _ in range(2)]
    assert first.applied
    assert all(r.duplicate and not r.applied for r in again)
    assert totals(store) == after_one


def test_conflicting_replay_is_refused_and_changes_nothing(store: FalkorDBStore) -> None:
    merge(store, small_graph(seq=7))
    before = totals(store)
    with pytest.raises(SeqConflictError, match="seq 7"):
        merge(store, small_graph(seq=7, bytes_=999_999))
    assert totals(store) == before


def test_next_seq_adds_to_counters_on_the_same_day(store: FalkorDBStore) -> None:
    merge(store, small_graph(seq=1))
    merge(store, small_graph(seq=2))
    t = totals(store)
    assert (t["flow_edges"], t["bytes"], t["flows"]) == (3, 12600, 12)


def test_flows_are_bucketed_by_utc_day(store: FalkorDBStore) -> None:
    g1 = small_graph(seq=1)
    next_day = msgspec.structs.replace(
        g1, seq=2, window=msgspec.structs.replace(g1.window, start=T0 + 86_400_000, end=T0 + 86_460_000), digest=None
    ).sealed()
    merge(store, g1)
    merge(store, next_day)
    rows = store.read("query/device_peers_out", {"uid": mac(1), "day_from": 0, "day_to": T0 // 86_400_000, "sample": 5})
    assert {(r["protocol"], r["port"]): int(r["bytes"]) for r in rows} == {(6, 9100): 1000, (6, 443): 5000}
    assert totals(store)["flow_edges"] == 6


def test_connected_to_and_sgt_are_recorded(store: FalkorDBStore) -> None:
    merge(store, small_graph())
    dev = store.read("query/device_by_mac", {"mac": mac(2)})[0]["device"]
    assert (dev["switch_id"], dev["interface"], dev["vlan"], dev["sgt"]) == ("sw1", "Gi1/0/2", 20, 10)
    assert [(int(r["value"])) for r in store.read("query/sgts")] == [4, 10]


def test_bulk_read_rows_matches_read(store: FalkorDBStore) -> None:
    merge(store, small_graph())
    header, rows = store.read_rows("examples/top_talkers")
    assert header == ["src", "src_sgt", "dst", "dst_sgt", "bytes", "services"]
    assert rows[0][:4] == [mac(1), 4, "198.51.100.7", None]
    assert int(rows[0][4]) == 5000  # sum() is a float on FalkorDB: bulk statements use toInteger()
    assert store.read_rows("query/sgts") == (["value", "name"], [[4, None], [10, None]])


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'he said "hi"',
        "back\\slash",
        "new\nline\ttab",
        "é ✓ 😀",
        "ctl\x01char",
        '"src":"x"',
        "{brace}",
        "\\u0041",
    ],
)
def test_parameters_round_trip_exactly(store: FalkorDBStore, text: str) -> None:
    from clarion.store.falkordb_store import params_header

    rows = [[text, 1, None, True], ["x", 2**62, None, False]]  # the fast (json) path or its fallback
    maps = [{"t": text}]  # the client's path
    q = "UNWIND $rows AS r UNWIND $maps AS m RETURN r[0] AS a, r[1] AS b, m.t AS c"
    res = store._graph.query(params_header({"rows": rows, "maps": maps}) + q).result_set
    assert [row[0] for row in res] == [text, "x"]
    assert res[1][1] == 2**62
    assert res[0][2] == text
