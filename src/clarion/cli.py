"""The ``clarion`` command: serve the API, run the demo, export schemas."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from clarion import __version__
from clarion.config import Settings
from clarion.identity.cli import ad_app, import_app
from clarion.identity.ise_cli import ise_app
from clarion.sources.pxgrid.cli import app as pxgrid_app

app = typer.Typer(
    name="clarion",
    help=(
        "Clarion: graph-centric network segmentation analytics for Cisco TrustSec.\n\n"
        "Start with `clarion demo` (embedded store, simulated edge agents, an SGT matrix in about a minute), "
        "then `clarion serve` for the real thing. Settings come from CLARION_* environment variables "
        "(see docs/operations.md): CLARION_GRAPH_URL unset means the embedded FalkorDB in CLARION_DATA_DIR."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(import_app, name="import")
app.add_typer(ad_app, name="ad")
app.add_typer(ise_app, name="ise")
app.add_typer(pxgrid_app, name="pxgrid", help="The Cisco ISE pxGrid 2.0 service (it alone holds the certificates).")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clarion {__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))  # one line per request


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default CLARION_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default CLARION_PORT or 8000).")] = None,
) -> None:
    """Serve the API: `POST /api/v1/graphs` for agents, `/graphql` for tooling, `/healthz`, `/metrics`.

    Example: `CLARION_ADMIN_TOKEN=... CLARION_AGENT_TOKENS=edge-sw1=... clarion serve --host 0.0.0.0`
    """
    import uvicorn

    from clarion.api.app import create_app

    settings = _settings_or_exit()
    app_ = create_app(settings)
    uvicorn.run(app_, host=host or settings.host, port=port if port is not None else settings.port, log_level="info")


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=10, max=200_000, help="Devices on the synthetic campus.")] = 3000,
    switches: Annotated[int, typer.Option(min=1, max=500, help="Access switches, one simulated edge agent each.")] = 6,
    days: Annotated[int, typer.Option(min=1, max=30, help="Days of traffic to simulate (one window per hour).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic campus (same seed, same campus).")] = 7,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo graph here (default: a temporary directory).")
    ] = None,
    keep_serving: Annotated[bool, typer.Option(help="Keep the API running afterwards to explore it.")] = False,
) -> None:
    """Run Clarion's main job end to end on the embedded store, with real HTTP and real agents' sender.

    Starts the embedded FalkorDB and a real uvicorn server, drives one simulated edge agent per switch
    through the `clarion_edge` sender, then prints devices, flows and the SGT policy matrix.
    """
    from clarion.demo import run_demo

    run_demo(devices=devices, switches=switches, days=days, seed=seed, data_dir=data_dir, keep_serving=keep_serving)


@app.command()
def cluster(
    server: Annotated[str | None, typer.Option(help="Run through this server (e.g. http://127.0.0.1:8000).")] = None,
    token: Annotated[str | None, typer.Option(envvar="CLARION_TOKEN", help="Admin token for --server.")] = None,
    min_cluster_size: Annotated[int | None, typer.Option(min=2, help="Smallest group worth a cluster.")] = None,
    min_samples: Annotated[int | None, typer.Option(min=1, help="HDBSCAN min_samples (higher: more noise).")] = None,
    identity_weight: Annotated[float | None, typer.Option(min=0, max=10, help="Weight of AD groups/profile.")] = None,
) -> None:
    """Group devices by behaviour (HDBSCAN) and recommend an SGT per group.

    Without --server it reads and writes the store configured by CLARION_* settings; when a running
    `clarion serve` already holds the embedded store, use `--server URL --token ADMIN_TOKEN`.
    Example: `clarion cluster --server http://127.0.0.1:8000 --token $CLARION_ADMIN_TOKEN`
    """
    from clarion.analytics.model import ClusteringParams, ParamsError
    from clarion.cluster_cli import cluster_local, cluster_remote, print_clusters
    from clarion.console import wide_console

    console = wide_console()
    options: dict[str, Any] = {
        "min_cluster_size": min_cluster_size, "min_samples": min_samples, "identity_weight": identity_weight,
    }  # fmt: skip
    given = {k: v for k, v in options.items() if v is not None}
    try:
        if server:
            if not token:
                raise typer.BadParameter("--server needs --token (or CLARION_TOKEN) with an admin token")
            camel = {
                "min_cluster_size": "minClusterSize",
                "min_samples": "minSamples",
                "identity_weight": "identityWeight",
            }
            clusters = cluster_remote(server, token, {camel[k]: v for k, v in given.items()}, console)
        else:
            clusters = cluster_local(_settings_or_exit(), ClusteringParams(**given), console)
    except (ParamsError, RuntimeError) as e:
        typer.secho(f"clustering failed: {e}", fg="red", err=True)
        raise typer.Exit(1) from None
    print_clusters(console, clusters)


@app.command("export-schemas")
def export_schemas(
    root: Annotated[Path, typer.Option(help="Repository root to write into.")] = Path(),
) -> None:
    """Write graphql/schema.graphql and docs/edgegraph-v1.schema.json from the code (tests check they are fresh)."""
    from clarion.schemas import render_edgegraph_json_schema, render_graphql_sdl

    (root / "graphql").mkdir(exist_ok=True)
    (root / "graphql" / "schema.graphql").write_text(render_graphql_sdl())
    (root / "docs" / "edgegraph-v1.schema.json").write_text(render_edgegraph_json_schema())
    typer.echo("wrote graphql/schema.graphql and docs/edgegraph-v1.schema.json")


def _settings_or_exit() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as e:
        typer.secho(f"invalid settings:\n{e}", fg="red", err=True)
        raise typer.Exit(2) from None
