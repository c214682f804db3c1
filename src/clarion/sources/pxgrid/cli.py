"""``clarion pxgrid ...``: a typer sub-app the main CLI mounts; ``run`` starts the long-running pxGrid service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from clarion.sources.pxgrid.service import run as run_service
from clarion.sources.pxgrid.settings import load_settings
from clarion.sources.pxgrid.sink import HttpSink, MemorySink, SessionSink

app = typer.Typer(help="Cisco ISE pxGrid 2.0: stream sessions and TrustSec groups into Clarion.", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Cisco ISE pxGrid 2.0 consumer."""


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", help="TOML file with a [pxgrid] table")] = None,
    node_name: Annotated[str | None, typer.Option("--node-name", help="pxGrid client account name")] = None,
    host: Annotated[list[str] | None, typer.Option("--host", help="pxGrid node (repeatable; tried in turn)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="pxGrid port (8910)")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="client certificate (PEM) of a cert account")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="private key of the client certificate")] = None,
    ca: Annotated[Path | None, typer.Option("--ca", help="CA bundle that signed ISE's pxGrid certificate")] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="password account: read, or created with AccountCreate")
    ] = None,
    server: Annotated[str | None, typer.Option("--server", help="Clarion server base URL to POST sessions to")] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="CLARION_PXGRID_TOKEN", help="admin/agent token for --server")
    ] = None,
    status_port: Annotated[int | None, typer.Option("--status-port", help="status API port (0: any)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the pxGrid service until SIGTERM: activate, subscribe, backfill, stream, reconnect."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(
            config,
            node_name=node_name,
            hosts=tuple(host) if host else None,
            port=port,
            client_cert=cert,
            client_key=key,
            ca_cert=ca,
            password_file=password_file,
            server=server,
            status_port=status_port,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    sink: SessionSink
    if settings.server:
        secret = token
        if secret is None and settings.token_file is not None:
            secret = settings.token_file.read_text(encoding="utf-8").strip()
        if not secret:
            typer.echo("--server needs --token (or CLARION_PXGRID_TOKEN, or token_file in the config)", err=True)
            raise typer.Exit(2)
        sink = HttpSink(settings.server, secret, batch=settings.max_batch)
    else:
        typer.echo("no --server given: sessions are kept in memory only (status API shows the counters)", err=True)
        sink = MemorySink(keep_batches=False)
    run_service(settings, sink)
