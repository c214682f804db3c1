"""Clustering through the API: a job with progress, clusters written back, stable ids on re-run."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from clarion.api.app import create_app
from clarion.server import BackgroundServer
from clarion.store.falkordb_store import FalkorDBStore
from clarion.synth import CampusSpec, generate_campus
from clarion_edge import wire
from tests.e2e.conftest import ADMIN_TOKEN, Api, make_settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(store: FalkorDBStore) -> Iterator[Api]:
    """The API with its default batch limits (the shared fixture's are small on purpose)."""
    settings = make_settings()
    with BackgroundServer(create_app(settings, store)) as server:
        yield Api(server.url, store, settings)


RUN = "mutation { runClustering(params: {minClusterSize: 8}) { id state } }"
JOB = "query($id: ID!) { job(id: $id) { state progress message error runId } }"
CLUSTERS = """{ clusters { id clusterId label size confidence reasons { text }
    recommendation { sgt sgtName isNew confidence disagreeingCount } members(first: 3) { uid probability } } }"""


def ingest_campus(api: Api) -> None:
    campus = generate_campus(CampusSpec(seed=11, switches=2, devices=400))
    with api.client(ADMIN_TOKEN) as c:
        for g in campus.edge_graphs(agent_id_prefix="edge-"):
            r = c.post("/api/v1/graphs", content=wire.encode(g))
            assert r.status_code == 200, r.text


def run_job(api: Api) -> dict:  # type: ignore[type-arg]
    started = api.graphql(RUN, token=ADMIN_TOKEN)["data"]["runClustering"]
    progress: list[float] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = api.graphql(JOB, {"id": started["id"]})["data"]["job"]
        progress.append(job["progress"])
        if job["state"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.2)
    assert job["state"] == "SUCCEEDED", job
    assert progress == sorted(progress)  # progress never goes backwards
    assert job["progress"] == 1.0
    return job  # type: ignore[no-any-return]


def test_clustering_job_writes_clusters_and_keeps_ids_stable(api: Api) -> None:
    ingest_campus(api)
    first = run_job(api)
    clusters = api.graphql(CLUSTERS)["data"]["clusters"]
    assert len(clusters) >= 3
    assert all(c["size"] >= 8 for c in clusters)
    assert all(c["id"] == f"{first['runId']}:{c['clusterId']}" for c in clusters)
    assert all(c["reasons"] and c["label"] for c in clusters)
    assert all(len(c["members"]) == min(3, c["size"]) for c in clusters)
    phones = [c for c in clusters if "sip" in c["label"]]
    assert phones, [c["label"] for c in clusters]
    second = run_job(api)
    assert second["runId"] != first["runId"]
    again = api.graphql(CLUSTERS)["data"]["clusters"]
    assert [(c["clusterId"], c["label"], c["size"], c["recommendation"]) for c in again] == [
        (c["clusterId"], c["label"], c["size"], c["recommendation"]) for c in clusters
    ]
    runs = api.graphql("{ clusteringRuns { runId clusterCount } }")["data"]["clusteringRuns"]
    assert [r["runId"] for r in runs] == [second["runId"], first["runId"]]


def test_run_clustering_needs_an_admin_token_and_valid_params(api: Api) -> None:
    denied = api.graphql(RUN)  # reader token
    assert denied["errors"][0]["message"] == "runClustering needs an admin token"
    bad = api.graphql("mutation { runClustering(params: {minSamples: 0}) { id } }", token=ADMIN_TOKEN)
    assert "min_samples=0 is out of range" in bad["errors"][0]["message"]
    assert api.graphql('{ job(id: "nope") { state } }')["data"]["job"] is None
