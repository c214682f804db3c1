"""Columnar bulk reads (``read_columns``): exact values from both adapters, clear errors on what they cannot carry."""

from __future__ import annotations

import numpy as np
import pytest

from clarion.jobs.snapshot_read import read_snapshot
from clarion.store.falkordb_store import FalkorDBStore, _text_lists, _text_tuples
from clarion.store.neo4j_store import Neo4jStore
from clarion.store.port import StoreError, columns_of, list_column
from tests.integration.test_neo4j_store_bolt import BoltStub, Records

pytestmark = pytest.mark.integration

# What FalkorDB's verbose reply holds for `RETURN a.uid, count(e), collect(b.uid), collect(e.port)`.
FALKOR_ROWS = [
    ["02:00:00:00:00:01", 2, "[02:00:00:00:00:02, 10.0.0.9]", "[443, -1]"],
    ["02:00:00:00:00:03", 0, "[]", "[]"],
    ["10.0.0.9", 1, "[02:00:00:00:00:01]", "[9223372036854775807]"],
]


def test_falkordb_lists_as_text_flatten_to_exact_arrays() -> None:
    cols = columns_of("here", ["src", "n", "dst", "port"], FALKOR_ROWS, ("dst", "port"), _text_lists)
    assert cols["src"].tolist() == ["02:00:00:00:00:01", "02:00:00:00:00:03", "10.0.0.9"]
    assert cols["n"].dtype == np.int64
    assert cols["n"].tolist() == [2, 0, 1]
    assert cols["dst"].tolist() == ["02:00:00:00:00:02", "10.0.0.9", "02:00:00:00:00:01"]
    assert cols["port"].dtype == np.int64
    assert cols["port"].tolist() == [443, -1, 2**63 - 1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["a", "[1, NULL]"]], "column 'v' mixes integers with other items"),
        ([["a", "[1, 1.500000]"]], "column 'v' mixes integers with other items"),
        ([["a", "1"]], "column 'v' row 0 is '1', not a list"),
        ([[None, "[1]"]], "column 'k' item 0 is None"),
        ([["a", "[1]"], [3, "[2]"]], "column 'k' item 1 is 3"),
    ],
)
def test_values_a_columnar_read_cannot_carry_are_refused_by_name(rows: list[list[object]], message: str) -> None:
    with pytest.raises(StoreError, match="^FalkorDB x \\(q\\): " + message.replace("(", "\\(")):
        columns_of("FalkorDB x (q)", ["k", "v"], rows, ("v",), _text_lists)


# What FalkorDB's verbose reply holds for `RETURN id(a), collect([id(b), e.port, e.bytes])`.
FALKOR_TUPLES = [[7, "[[8, 443, 5000000000], [9, -1, 0]]"], [8, "[]"], [9, "[[7, 53, 9223372036854775807]]"]]


def test_falkordb_tuples_as_text_parse_to_an_exact_table_and_counts() -> None:
    cols = columns_of("here", ["src", "v"], FALKOR_TUPLES, (), _text_lists, {"v": 3}, _text_tuples)
    assert cols["v"].dtype == np.int64
    assert cols["v"].tolist() == [[8, 443, 5_000_000_000], [9, -1, 0], [7, 53, 2**63 - 1]]
    assert cols["v.rows"].tolist() == [2, 0, 1]
    assert cols["src"].tolist() == [7, 8, 9]
    real = columns_of("here", ["src", "v"], [[7, [[8, 443, 1], [9, 1, 0]]]], (), list_column, {"v": 3})
    assert real["v"].tolist() == [[8, 443, 1], [9, 1, 0]]
    assert real["v.rows"].tolist() == [2]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[[1, 2, 3], [4, NULL, 6]]", "does not parse as 2 lists of 3 integers"),
        ("[[1, 2, 3], [4, 5]]", "does not parse as 2 lists of 3 integers"),
        ("[[1, 2, 3], [4, 5, 6, 7]]", "does not parse as 2 lists of 3 integers"),
        ("[[1, 2, 3], [4, 5, 6.500000]]", "does not parse as 2 lists of 3 integers"),
        ("[[a, 2, 3]]", "does not parse as 1 lists of 3 integers"),
        ("[1, 2, 3]", r"row 0 is '\[1, 2, 3\]', not a list of lists"),
        (None, "row 0 is 'None', not a list of lists"),
    ],
)
def test_a_tuple_column_refuses_what_is_not_integer_lists_of_its_width(value: object, message: str) -> None:
    with pytest.raises(StoreError, match="^FalkorDB x \\(q\\): column 'v' " + message):
        columns_of("FalkorDB x (q)", ["k", "v"], [[1, value]], (), _text_lists, {"v": 3}, _text_tuples)


def test_a_tuple_column_of_real_lists_refuses_a_null_by_name() -> None:
    with pytest.raises(StoreError, match=r"column 'v' holds \[4, None, 6\]; a tuple column takes lists of 3 integers"):
        columns_of("here", ["k", "v"], [[1, [[1, 2, 3], [4, None, 6]]]], (), list_column, {"v": 3})


def test_an_item_holding_the_list_separator_is_caught_not_misaligned() -> None:
    rows = [["a", "[b, c, d]", "[1, 2]"]]  # two uids, one of them "b, c": FalkorDB prints it unquoted
    with pytest.raises(StoreError, match=r"flatten to different lengths \{'dst': 3, 'port': 2\}"):
        columns_of("here", ["src", "dst", "port"], rows, ("dst", "port"), _text_lists)


FLOW = "{protocol: 6, port: 443, bytes: 10, packets: 1, flows: 1, first_seen: 0, last_seen: 0, day: 0}"


def test_a_real_falkordb_reads_any_uid_and_refuses_a_null_in_a_list(store: FalkorDBStore) -> None:
    store._graph.query(
        f"CREATE (:Device {{uid: 'a', local: true}})-[:FLOWS_TO {FLOW}]->(:Device {{uid: 'odd, [uid]'}})"
    )
    snap = read_snapshot(store, 0, 10)
    assert snap.device_ids == ["a", "odd, [uid]"]
    assert snap.edges[["src", "dst", "port"]].tolist() == [(0, 1, 443)]
    store._graph.query(
        "MATCH (a:Device {uid: 'a'}), (b:Device {uid: 'odd, [uid]'}) CREATE (a)-[:FLOWS_TO {day: 0}]->(b)"
    )
    with pytest.raises(
        StoreError,
        match=r"column 'v' does not parse as 2 lists of 9 integers \(a null, float or text item",
    ):
        read_snapshot(store, 0, 10)


def test_a_node_id_reused_during_the_read_is_refused(store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store._graph.query(f"CREATE (:Device {{uid: 'a', local: true}})-[:FLOWS_TO {FLOW}]->(:Device {{uid: 'b'}})")
    real = store.read_columns

    def replace_b_first(*args: object, **kwargs: object) -> object:
        # ingest and identity correlation run while clustering reads: 'b' goes, a new device takes its id
        store._graph.query("MATCH (b:Device {uid: 'b'}) DETACH DELETE b")
        store._graph.query(f"MATCH (a:Device {{uid: 'a'}}) CREATE (a)-[:FLOWS_TO {FLOW}]->(:Device {{uid: 'c'}})")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "read_columns", replace_b_first)
    ids = dict(store.read_rows("query/snapshot_devices")[1][i][:2] for i in range(2))
    with pytest.raises(StoreError, match=r"node id \d+ belonged to device 'b' and now to 'c'"):
        read_snapshot(store, 0, 10, slices=1, connections=1)
    assert ids  # the ids were real node ids
    assert all(type(k) is int for k in ids)


def test_a_real_falkordb_reads_the_values_it_stores(store: FalkorDBStore) -> None:
    store._graph.query(
        "CREATE (a:Device {uid: 'a', local: true}), (b:Device {uid: 'b', local: false}), "
        "(a)-[:FLOWS_TO {protocol: 17, port: 53, bytes: 5000000000, packets: 3, flows: 2, first_seen: 1700000000000, "
        "last_seen: 1700000000999, day: 19675}]->(b), "
        "(a)-[:FLOWS_TO {protocol: 17, port: 53, bytes: 7, packets: 1, flows: 1, first_seen: 1700086400000, "
        "last_seen: 1700086400000, day: 19676}]->(b)"
    )
    snap = read_snapshot(store, 0, 10**7)
    assert snap.device_ids == ["a", "b"]
    assert snap.local.tolist() == [True, False]
    rows = sorted(tuple(int(x) for x in r) for r in snap.edges.tolist())
    assert rows == [
        (0, 1, 17, 53, 7, 1, 1, 1_700_086_400_000, 1_700_086_400_000, 19676),
        (0, 1, 17, 53, 5_000_000_000, 3, 2, 1_700_000_000_000, 1_700_000_000_999, 19675),
    ]


@pytest.fixture
def stub() -> BoltStub:
    s = BoltStub(password="stub-password")
    yield s  # type: ignore[misc]
    s.close()


def test_neo4j_reads_the_snapshot_as_columns(stub: BoltStub) -> None:
    store = Neo4jStore(f"bolt://127.0.0.1:{stub.port}", user="clarion", password=stub.password)
    stub.plan = [
        Records(
            ["node", "uid", "local", "sgt", "profile"], [["a", "a", 1, 4, "Cisco-IP-Phone"], ["b", "b", 0, None, None]]
        ),
        Records(["src", "dst", "v"], [["a", ["b", "b"], [[6, 443, 10, 1, 1, 5, 7, 0], [17, 53, 20, 2, 1, 6, 8, 1]]]]),
        Records(["uid", "grp"], [["a", "Staff"]]),
        Records(["value", "name"], [[4, "Employees"]]),
    ]
    try:
        snap = read_snapshot(store, 0, 10**7, slices=1, connections=1)
    finally:
        store.close()
    assert snap.device_ids == ["a", "b"]
    assert snap.edges.tolist() == [(0, 1, 6, 443, 10, 1, 1, 5, 7, 0), (0, 1, 17, 53, 20, 2, 1, 6, 8, 1)]
    assert snap.ad_groups == [["Staff"], []]
    assert snap.sgt == [4, None]
    assert snap.sgt_names == {4: "Employees"}
    [_, edges_run, *_] = stub.sent("RUN")
    assert edges_run[1] == {"day_from": 0, "day_to": 10**7, "uid_from": "", "uid_to": None}
