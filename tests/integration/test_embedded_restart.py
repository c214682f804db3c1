"""Restarting the embedded store from its AOF (rewritten or not) and merging on: issue 5, ADR 0016.

FalkorDB 4.16.3 segfaulted in ``EnforceUniqueEntity`` on the first batch merged after loading the
graph from the AOF's RDB base file, because of the ``SGT.value`` unique constraint. These tests run
the real merger against a real embedded server, restarted on the same data dir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from clarion.ingest.merger import merge
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import StoreError
from clarion.synth.campus import CampusSpec, generate_campus
from clarion_edge.wire import EdgeGraph, FlowsTo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def campus() -> list[EdgeGraph]:
    # 300 devices on 4 switches: the size issue 5 crashed at, a few seconds to merge
    return list(generate_campus(CampusSpec(seed=7, switches=4, devices=300)).edge_graphs())


@pytest.fixture(scope="module")
def clean_totals(campus: list[EdgeGraph], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole campus merged in one run, never restarted: what every restart path must equal."""
    s = FalkorDBStore.embedded(tmp_path_factory.mktemp("clean"), "g")
    try:
        s.ensure_schema()
        for eg in campus:
            merge(s, eg)
        return totals(s)
    finally:
        s.close()


def totals(s: FalkorDBStore) -> dict[str, Any]:
    """Nodes per label, FLOWS_TO count and byte/packet/flow sums, read straight from the graph."""
    labels = s._graph.ro_query("MATCH (n) RETURN labels(n)[0] AS l, count(*) AS c ORDER BY l").result_set
    flows = s._graph.ro_query(
        "MATCH ()-[r:FLOWS_TO]->() RETURN count(r), sum(r.bytes), sum(r.packets), sum(r.flows)"
    ).result_set[0]
    return {"nodes": {str(r[0]): int(r[1]) for r in labels}, "flows_to": [int(v) for v in flows]}


def rewrite_aof(s: FalkorDBStore, timeout_s: float = 60) -> None:
    """BGREWRITEAOF and wait until the new RDB base file is in place."""
    conn = s._db.connection
    conn.execute_command("BGREWRITEAOF")
    deadline = time.monotonic() + timeout_s
    while True:
        info = conn.info("persistence")
        if info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0:
            assert info["aof_last_bgrewrite_status"] == "ok"
            return
        assert time.monotonic() < deadline, "the AOF rewrite did not finish"
        time.sleep(0.05)


def create_sgt_constraint(s: FalkorDBStore) -> None:
    """What Clarion before ADR 0016 created on every graph (from ``schema/model.json``)."""
    s._query("CREATE INDEX FOR (t:SGT) ON (t.value)", {}, name="legacy schema")
    s._wait_operational(s._indexes, "index")
    s._db.connection.execute_command(
        "GRAPH.CONSTRAINT", "CREATE", s.graph_name, "UNIQUE", "NODE", "SGT", "PROPERTIES", "1", "value"
    )
    s._wait_operational(s._constraints, "constraint")


def merge_half_restart_merge_rest(
    data_dir: Path, campus: list[EdgeGraph], *, rewrite_at: int | None, legacy_constraint: bool = False
) -> dict[str, Any]:
    """Merge the first half (the first ``rewrite_at`` batches folded into an RDB base), restart, merge the rest."""
    half = len(campus) // 2
    rewrite = rewrite_at is not None
    s = FalkorDBStore.embedded(data_dir, "g")
    try:
        s.ensure_schema()
        if legacy_constraint:
            create_sgt_constraint(s)
        for i, eg in enumerate(campus[:half]):
            if i == rewrite_at:
                rewrite_aof(s)  # as Redis does by itself: the later merges go to the new incr file
            assert not merge(s, eg).duplicate
        if rewrite_at == half:
            rewrite_aof(s)
    finally:
        s.close()
    if rewrite:
        base = list((data_dir / "appendonlydir").glob("*.base.rdb"))
        assert len(base) == 1
        assert base[0].stat().st_size > 10_000  # the restart loads the graph from an RDB, then replays
    s = FalkorDBStore.embedded(data_dir, "g")  # same data dir: loads the AOF
    try:
        s.ensure_schema()  # what `clarion serve` runs at startup
        for eg in campus[half:]:
            assert not merge(s, eg).duplicate
        after = totals(s)
        for eg in (campus[0], campus[half - 1], campus[-1]):  # replays from before and after the restart
            assert merge(s, eg).duplicate
        assert totals(s) == after  # a replayed batch is not applied twice
        assert "SGT" not in [r["label"] for r in s._constraints() + s._indexes()]
        return after
    finally:
        s.close()


def test_merge_after_restart_from_rewritten_aof(
    tmp_path: Path, campus: list[EdgeGraph], clean_totals: dict[str, Any]
) -> None:
    # the rewrite comes after a third: the restart loads the RDB base and replays merges on top of it
    got = merge_half_restart_merge_rest(tmp_path, campus, rewrite_at=len(campus) // 3)
    assert got == clean_totals
    assert clean_totals["nodes"]["Batch"] == len(campus)
    assert clean_totals["flows_to"][1] == sum(f.bytes for eg in campus for f in eg.edges if isinstance(f, FlowsTo))


def test_merge_after_restart_replaying_the_aof(
    tmp_path: Path, campus: list[EdgeGraph], clean_totals: dict[str, Any]
) -> None:
    assert merge_half_restart_merge_rest(tmp_path, campus, rewrite_at=None) == clean_totals


def test_data_dir_of_an_older_clarion_is_healed(
    tmp_path: Path, campus: list[EdgeGraph], clean_totals: dict[str, Any]
) -> None:
    # issue 5 as reported: the SGT index and constraint an older Clarion created are in the RDB base,
    # the AOF was rewritten last; ensure_schema drops both before the first merge after the restart
    got = merge_half_restart_merge_rest(tmp_path, campus, rewrite_at=len(campus) // 2, legacy_constraint=True)
    assert got == clean_totals


def test_duplicate_sgt_nodes_are_refused(tmp_path: Path) -> None:
    s = FalkorDBStore.embedded(tmp_path, "g")
    try:
        s._graph.query("CREATE (:SGT {value: 17}), (:SGT {value: 17}), (:SGT {value: 4})")
        with pytest.raises(StoreError, match=r"duplicate SGT nodes on value \(key, count\): \[\(\[17\], 2\)\]"):
            s.ensure_schema()
    finally:
        s.close()


def test_why_sgt_value_has_no_index(tmp_path: Path) -> None:
    """The FalkorDB bug behind ADR 0016, pinned: when this fails, a fixed FalkorDB may get the index back."""
    s = FalkorDBStore.embedded(tmp_path, "g")
    try:
        s._query("CREATE INDEX FOR (t:Probe) ON (t.value)", {}, name="probe index")
        s._wait_operational(s._indexes, "index")
        s._graph.query("UNWIND [3, 2, 0] AS v CREATE (:Probe {value: v})")
        assert s._graph.ro_query("MATCH (t:Probe {value: 0}) RETURN count(t)").result_set == [[1]]
        rewrite_aof(s)
    finally:
        s.close()
    s = FalkorDBStore.embedded(tmp_path, "g")
    try:
        s._wait_operational(s._indexes, "index")
        by_index = s._graph.ro_query("MATCH (t:Probe {value: 0}) RETURN count(t)").result_set
        by_scan = s._graph.ro_query("MATCH (t:Probe) WHERE t.value + 0 = 0 RETURN count(t)").result_set
        assert (by_index, by_scan) == ([[0]], [[1]])  # the loaded index lost value 0; the node is there
        assert s._graph.ro_query("MATCH (t:Probe {value: 2}) RETURN count(t)").result_set == [[1]]
    finally:
        s.close()
