"""``clarion demo``: the main job end to end, on one machine, in about a minute.

Embedded FalkorDB, a real uvicorn server, one simulated edge agent per switch sending the
synthetic campus's windows through the real ``clarion_edge`` sender over HTTP; then the
answers are read back through GraphQL, as any tool would.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clarion.api.app import create_app
from clarion.cluster_cli import cluster_remote, print_clusters
from clarion.config import Settings
from clarion.console import wide_console
from clarion.identity.demo import identity_payload
from clarion.server import BackgroundServer
from clarion.store.factory import open_store
from clarion.synth import CampusSpec, generate_campus
from clarion_edge import wire
from clarion_edge.sender import Sender

SUMMARY_QUERY = """
query Demo {
  stats { devices switches flowEdges bytes packets flows }
  switches { switchId name devices }
  policyMatrix { sgts { value name } cells { srcSgt dstSgt bytes flows serviceCount services { service } } }
}
"""


def run_demo(
    *, devices: int, switches: int, days: int, seed: int, data_dir: Path | None, keep_serving: bool
) -> dict[str, Any]:
    console = wide_console()
    directory = data_dir or Path(tempfile.mkdtemp(prefix="clarion-demo-"))
    t0 = time.perf_counter()
    with console.status(f"generating a synthetic campus: {devices} devices, {switches} switches, {days} day(s)"):
        campus = generate_campus(CampusSpec(seed=seed, switches=switches, devices=devices, days=days))
        graphs = list(campus.edge_graphs(agent_id_prefix="edge-"))
    per_agent: dict[str, list[wire.EdgeGraph]] = defaultdict(list)
    for g in graphs:
        per_agent[g.agent_id].append(g)
    agent_tokens = {a: secrets.token_urlsafe(24) for a in per_agent}
    admin = secrets.token_urlsafe(24)
    settings = Settings(
        data_dir=directory, graph_url=None, admin_token=admin,
        agent_tokens=",".join(f"{a}={t}" for a, t in agent_tokens.items()),
    )  # fmt: skip
    console.print(
        f"campus ready: {len(graphs)} EdgeGraphs from {len(per_agent)} agents ({time.perf_counter() - t0:.1f} s)"
    )
    store = open_store(settings)
    try:
        with BackgroundServer(create_app(settings, store)) as server:
            console.print(f"embedded FalkorDB in {directory}; API at {server.url}")
            _drive_agents(console, server.url, per_agent, agent_tokens)
            _show_exactly_once(console, server.url, graphs[0], agent_tokens[graphs[0].agent_id], admin)
            _feed_identity(console, server.url, admin, campus)
            summary = _graphql(server.url, admin, SUMMARY_QUERY)
            _print_summary(console, summary)
            clusters = cluster_remote(server.url, admin, {}, console)
            print_clusters(console, clusters, limit=15)
            summary["clusters"] = clusters
            console.print(f"\nGraphQL (GraphiQL in a browser): [bold]{server.url}/graphql[/]  token: {admin}")
            if keep_serving:
                console.print("serving until Ctrl-C ...")
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
    finally:
        store.close()
    console.print(f"demo finished in {time.perf_counter() - t0:.1f} s")
    return summary


def _drive_agents(
    console: Console, url: str, per_agent: dict[str, list[wire.EdgeGraph]], tokens: dict[str, str]
) -> None:
    total = sum(len(gs) for gs in per_agent.values())
    columns = (
        TextColumn("agents sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("batches"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("send", total=total)

        def agent(agent_id: str) -> int:
            with Sender(url, tokens[agent_id], timeout=120, retries=5) as sender:
                for g in per_agent[agent_id]:
                    result = sender.send(g)
                    if not result.acked:
                        raise RuntimeError(
                            f"agent {agent_id} batch {g.seq}: {result.outcome} {result.error or result.body}"
                        )
                    progress.advance(task)
            return len(per_agent[agent_id])

        with ThreadPoolExecutor(max_workers=min(8, len(per_agent))) as pool:
            list(pool.map(agent, per_agent))


def _show_exactly_once(console: Console, url: str, g: wire.EdgeGraph, token: str, admin: str) -> None:
    before = _graphql(url, admin, "{ stats { flowEdges bytes flows } }")["stats"]
    with Sender(url, token) as sender:
        result = sender.send(g)
    after = _graphql(url, admin, "{ stats { flowEdges bytes flows } }")["stats"]
    verdict = "unchanged" if before == after else f"CHANGED {before} -> {after}"
    console.print(f"replayed batch {g.agent_id}#{g.seq}: duplicate={result.body.get('duplicate')}, counters {verdict}")


def _feed_identity(console: Console, url: str, admin: str, campus: Any) -> None:
    """What ISE (pxGrid sessions, TrustSec names) would tell Clarion about the campus."""
    body = identity_payload(campus)
    r = httpx.post(f"{url}/api/v1/identity", json=body, headers={"Authorization": f"Bearer {admin}"}, timeout=300)
    r.raise_for_status()
    console.print(
        f"identity: {len(body.get('sessions', []))} sessions and {len(body.get('security_groups', []))} SGTs merged"
    )


def _graphql(url: str, token: str, query: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    r.raise_for_status()
    body = r.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} PB"


MATRIX_SGTS = 10


def _short(n: int) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if n < 1000:
            return f"{n:.0f}{unit}"
        n //= 1000
    return f"{n}P"


def _print_summary(console: Console, data: dict[str, Any]) -> None:
    s = data["stats"]
    console.print(
        f"\n[bold]{s['devices']}[/] devices, [bold]{s['switches']}[/] switches, [bold]{s['flowEdges']}[/] FLOWS_TO "
        f"edges, {s['flows']} flows, {s['packets']} packets, {_human(s['bytes'])}"
    )
    m = data["policyMatrix"]
    names = {x["value"]: f"{x['value']} {x['name'] or ''}".strip() for x in m["sgts"]}
    cells = {(c["srcSgt"], c["dstSgt"]): c for c in m["cells"]}
    volume: dict[int, int] = defaultdict(int)
    for c in m["cells"]:
        volume[c["srcSgt"]] += c["bytes"]
        volume[c["dstSgt"]] += c["bytes"]
    shown = sorted(sorted(volume, key=lambda v: -volume[v])[:MATRIX_SGTS])
    hidden = len(volume) - len(shown)
    table = Table(
        title=f"Observed SGT policy matrix: bytes, rows = source SGT, columns = destination SGT "
        f"(top {len(shown)} SGTs by traffic{f', {hidden} more in GraphQL' if hidden else ''})",
    )
    table.add_column("src \\ dst", style="bold")
    for v in shown:
        table.add_column(str(v), justify="right")
    for src in shown:
        row = [names[src]]
        for dst in shown:
            c = cells.get((src, dst))
            row.append(_short(c["bytes"]) if c else "·")
        table.add_row(*row)
    console.print(table)
    top = sorted(m["cells"], key=lambda c: -c["bytes"])[:8]
    t2 = Table(title="Largest cells and their top services")
    for col in ("src", "dst", "bytes", "flows", "services"):
        t2.add_column(col)
    for c in top:
        svcs = ", ".join(x["service"] for x in c["services"][:5])
        more = f" (+{c['serviceCount'] - 5})" if c["serviceCount"] > 5 else ""
        t2.add_row(names[c["srcSgt"]], names[c["dstSgt"]], _human(c["bytes"]), str(c["flows"]), svcs + more)
    console.print(t2)
