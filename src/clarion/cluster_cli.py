"""``clarion cluster``: behavioural clustering from the command line, with a progress bar.

Runs against the configured store directly, or through a running server (``--server``), which
is the way when that server already holds the embedded store.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion.analytics.model import ClusteringParams
from clarion.config import Settings


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("clustering"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console,
    )  # fmt: skip


def cluster_local(settings: Settings, params: ClusteringParams, console: Console) -> list[dict[str, Any]]:
    from clarion.jobs.clustering import cluster_graph
    from clarion.store.factory import open_store

    store = open_store(settings)
    try:
        store.ensure_schema()
        with _progress(console) as bar:
            task = bar.add_task("", total=1.0)
            run = cluster_graph(store, params, progress=lambda f, m: bar.update(task, completed=f, description=m))
    finally:
        store.close()
    return [
        {
            "clusterId": c.cluster_id, "label": c.label, "size": c.size, "confidence": c.confidence,
            "recommendation": {
                "sgt": c.recommendation.sgt, "sgtName": c.recommendation.sgt_name, "isNew": c.recommendation.is_new,
                "confidence": c.recommendation.confidence, "disagreeingCount": len(c.recommendation.disagreeing),
            },
        }
        for c in run.clusters
    ]  # fmt: skip


CLUSTERS = """{ clusters { clusterId label size confidence
  recommendation { sgt sgtName isNew confidence disagreeingCount } } }"""


def cluster_remote(server: str, token: str, params: dict[str, Any], console: Console) -> list[dict[str, Any]]:
    """Start ``runClustering`` on a server and follow the job until it ends."""
    with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:

        def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
            r = c.post("/graphql", json={"query": query, "variables": variables or {}})
            if r.status_code != 200:
                raise RuntimeError(f"{server}/graphql answered {r.status_code}: {r.text[:300]}")
            body = r.json()
            if body.get("errors"):
                raise RuntimeError(body["errors"][0]["message"])
            data: dict[str, Any] = body["data"]
            return data

        job = gql("mutation($p: ClusteringParamsInput) { runClustering(params: $p) { id } }", {"p": params})
        job_id = job["runClustering"]["id"]
        with _progress(console) as bar:
            task = bar.add_task("queued", total=1.0)
            while True:
                j = gql("query($id: ID!) { job(id: $id) { state progress message error } }", {"id": job_id})["job"]
                bar.update(task, completed=j["progress"], description=j["message"])
                if j["state"] not in ("QUEUED", "RUNNING"):
                    break
                time.sleep(0.5)
        if j["state"] != "SUCCEEDED":
            raise RuntimeError(f"clustering {j['state'].lower()}: {j['error']}")
        clusters: list[dict[str, Any]] = gql(CLUSTERS)["clusters"]
        return clusters


def print_clusters(console: Console, clusters: list[dict[str, Any]], limit: int = 25) -> None:
    table = Table(title=f"Behavioural clusters and SGT recommendations ({len(clusters)} clusters)")
    for col in ("id", "devices", "label", "confidence", "recommended SGT", "devices to re-tag"):
        table.add_column(
            col, justify="right" if col in ("id", "devices", "confidence", "devices to re-tag") else "left"
        )
    for c in sorted(clusters, key=lambda c: -c["size"])[:limit]:
        r = c["recommendation"]
        sgt = f"new: {r['sgtName']}" if r["isNew"] else f"{r['sgt']} {r['sgtName']} ({r['confidence']:.0%} carry it)"
        table.add_row(str(c["clusterId"]), str(c["size"]), c["label"], f"{c['confidence']:.2f}", sgt,
                      str(r["disagreeingCount"]))  # fmt: skip
    console.print(table)
