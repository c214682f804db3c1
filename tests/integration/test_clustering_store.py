"""Clustering against a real embedded FalkorDB: the columnar snapshot read, the atomic write-back, stable ids."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clarion.analytics.model import ClusteringParams, ClusteringRun
from clarion.analytics.snapshot import GraphSnapshot
from clarion.ingest.merger import merge
from clarion.jobs import clustering as jobs
from clarion.jobs.snapshot_read import read_snapshot, slice_bounds
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import StoreError
from clarion.synth import Campus, CampusSpec, generate_campus

pytestmark = pytest.mark.integration

PARAMS = ClusteringParams(min_cluster_size=8)


@pytest.fixture(scope="module")
def campus() -> Campus:
    return generate_campus(CampusSpec(seed=5, switches=2, devices=300))


@pytest.fixture
def loaded(store: FalkorDBStore, campus: Campus) -> FalkorDBStore:
    for g in campus.edge_graphs(agent_id_prefix="edge-"):
        merge(store, g)
    return store


def rows_of(snapshot: GraphSnapshot) -> list[tuple[object, ...]]:
    """The flow table as (src uid, dst uid, values...) rows, in a canonical order."""
    e, ids = snapshot.edges, snapshot.device_ids
    names = [n for n in e.dtype.names or () if n not in ("src", "dst")]
    return sorted((ids[int(r["src"])], ids[int(r["dst"])], *(int(r[n]) for n in names)) for r in e)


def test_the_sliced_columnar_read_returns_every_flow_row_once(loaded: FalkorDBStore) -> None:
    one = read_snapshot(loaded, 0, 10**7, slices=1, connections=1)
    many = read_snapshot(loaded, 0, 10**7, slices=7, connections=3)
    assert many.device_ids == one.device_ids
    assert len(one.edges) > 1000
    assert rows_of(many) == rows_of(one)
    assert np.array_equal(many.local, one.local)
    assert (many.sgt, many.profile) == (one.sgt, one.profile)
    # every FLOWS_TO relationship is one row, with its exact counters
    stats = loaded.read("query/stats")[0]
    assert len(one.edges) == stats["flow_edges"]
    assert int(one.edges["bytes"].sum()) == int(stats["bytes"])
    assert int(one.edges["flows"].sum()) == int(stats["flows"])


def test_the_day_range_keeps_only_its_buckets(loaded: FalkorDBStore) -> None:
    full = read_snapshot(loaded, 0, 10**7)
    days = sorted({int(d) for d in full.edges["day"]})
    first = read_snapshot(loaded, days[0], days[0])
    assert len(first.edges) == int((full.edges["day"] == days[0]).sum()) > 0
    assert set(first.edges["day"].tolist()) == {days[0]}


def test_slice_bounds_cover_every_uid_exactly_once() -> None:
    uids = [f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(1000)] + ["10.0.0.1", "zz"]
    bounds = slice_bounds(uids, 4)
    assert [len(bounds), bounds[0][0], bounds[-1][1]] == [4, "", None]
    for u in [*uids, "", "\uffff"]:
        assert sum(1 for lo, hi in bounds if u >= lo and (hi is None or u < hi)) == 1, u
    assert slice_bounds([], 4) == [("", None)]
    assert slice_bounds(["b", "a"], 8) == [("", "a"), ("a", "b"), ("b", None)]


def test_an_empty_graph_reads_as_an_empty_snapshot(store: FalkorDBStore) -> None:
    snap = read_snapshot(store, 0, 10**7)
    assert (snap.device_ids, len(snap.edges)) == ([], 0)


def run_ids(store: FalkorDBStore) -> list[str]:
    return [r["run"]["run_id"] for r in store.read("query/clustering_runs", {"limit": 100})]


def memberships(store: FalkorDBStore, run_id: str) -> set[tuple[int, str]]:
    return {(int(c), str(u)) for c, u in store.read_rows("query/run_memberships", {"run_id": run_id})[1]}


def test_a_run_is_written_whole_and_a_rerun_keeps_the_ids(loaded: FalkorDBStore, campus: Campus) -> None:
    first = jobs.cluster_graph(loaded, PARAMS)
    assert first.clusters
    written = memberships(loaded, first.run_id)
    assert written == {(c.cluster_id, m.device_id) for c in first.clusters for m in c.members}
    again = jobs.latest_run(loaded)
    assert again is not None
    assert again.run_id == first.run_id
    assert [(c.cluster_id, c.label, c.size) for c in again.clusters] == [
        (c.cluster_id, c.label, c.size) for c in first.clusters
    ]
    second = jobs.cluster_graph(loaded, PARAMS)
    assert second.input_digest == first.input_digest  # the same data read the same way
    assert memberships(loaded, second.run_id) == written  # same clusters, same ids
    assert run_ids(loaded) == [second.run_id, first.run_id]


def test_a_failed_write_leaves_the_previous_run_intact(loaded: FalkorDBStore) -> None:
    first = jobs.cluster_graph(loaded, PARAMS)
    assert len(first.clusters) >= 2
    before = memberships(loaded, first.run_id)
    bad = broken_copy(first)
    with pytest.raises(StoreError):
        jobs.write_run(loaded, bad, 0, 10**7, 300)
    assert run_ids(loaded) == [first.run_id]  # nothing of the failed run, the previous one untouched
    assert memberships(loaded, first.run_id) == before
    assert loaded.read_rows("query/run_memberships", {"run_id": bad.run_id})[1] == []


def broken_copy(run: ClusteringRun) -> ClusteringRun:
    """The same run under a new id whose last cluster repeats the first's id: the store refuses it midway.

    Cluster.uid is unique, so the statement fails after it created the run node, the first
    clusters and their IN_CLUSTER links; all of that must be rolled back.
    """
    clusters = [*run.clusters[:-1], dataclasses.replace(run.clusters[-1], cluster_id=run.clusters[0].cluster_id)]
    return dataclasses.replace(run, run_id="broken-run", created_ms=run.created_ms + 1, clusters=clusters)


def test_old_runs_are_pruned_with_their_memberships(loaded: FalkorDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "KEEP_RUNS", 2)
    runs = [jobs.cluster_graph(loaded, PARAMS) for _ in range(3)]
    assert run_ids(loaded) == [runs[2].run_id, runs[1].run_id]
    assert loaded.read_rows("query/run_memberships", {"run_id": runs[0].run_id})[1] == []
    links = loaded._graph.ro_query("MATCH ()-[m:IN_CLUSTER]->() RETURN count(m)").result_set[0][0]
    assert links == sum(c.size for r in runs[1:] for c in r.clusters)  # the pruned run's links went with it
