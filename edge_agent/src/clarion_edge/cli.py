"""``clarion-edge``: run the agent, send one EdgeGraph by hand, decode a capture."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from clarion_edge import __version__, wire
from clarion_edge.config import ConfigError, load_settings
from clarion_edge.decode_cli import register as register_decode

app = typer.Typer(
    name="clarion-edge",
    help=(
        "Clarion edge agent: collects NetFlow v5/v9/IPFIX from switches, builds one graph per switch per "
        "time window (an EdgeGraph) and sends it to the Clarion server, spooling to disk while the server "
        "is away.\n\n"
        "Examples:\n\n"
        "  clarion-edge run --config /etc/clarion-edge/clarion-edge.toml\n\n"
        "  clarion-edge run --listen 0.0.0.0:2055 --server https://clarion:8000 --token $TOKEN "
        "--agent-id edge-bldg1 --spool-dir /var/lib/clarion-edge\n\n"
        "  clarion-edge send graph.json --server https://clarion:8000 --token $TOKEN\n\n"
        "  clarion-edge decode capture.pcap --totals"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

register_decode(app)  # clarion-edge decode FILE [--totals]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clarion-edge {__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Clarion edge agent."""


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (see deploy/clarion-edge.toml).")
    ] = None,
    listen: Annotated[
        list[str] | None, typer.Option(help="UDP host:port for NetFlow; repeatable; [::]:2055 takes v4+v6.")
    ] = None,
    server: Annotated[str | None, typer.Option(help="Clarion server base URL, e.g. https://clarion:8000.")] = None,
    token: Annotated[str | None, typer.Option(help="Agent token (prefer CLARION_EDGE_TOKEN or token_file).")] = None,
    agent_id: Annotated[str | None, typer.Option(help="This agent's id; the token must belong to it.")] = None,
    switch_id: Annotated[str | None, typer.Option(help="Switch id for exporters not listed in [exporters].")] = None,
    window: Annotated[
        float | None, typer.Option(help="Window length in seconds (aligned to the clock), 1..86400.")
    ] = None,
    spool_dir: Annotated[Path | None, typer.Option(help="Directory of the spool and the seq state.")] = None,
    status_listen: Annotated[
        str | None, typer.Option(help="host:port of the JSON status endpoint; '' disables.")
    ] = None,
    receive_buffer: Annotated[
        str | None,
        typer.Option(help="UDP receive buffer to ask the kernel for, bytes or 32M / 256MiB (64K..1G); default 32M."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the agent until SIGTERM/SIGINT, then flush open windows to the spool.

    Settings come from the TOML file, then CLARION_EDGE_* variables (LISTEN, SERVER, TOKEN, TOKEN_FILE, AGENT_ID,
    SWITCH_ID, WINDOW, SPOOL_DIR, STATUS_LISTEN, SITE_PREFIXES, WORKER, RECEIVE_BUFFER), then these flags.

    Example: clarion-edge run -c /etc/clarion-edge/clarion-edge.toml --window 30
    """
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        typer.echo(f"error: --log-level {log_level!r}: expected DEBUG, INFO, WARNING or ERROR", err=True)
        raise typer.Exit(2)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per POST is noise: the agent logs outcomes
    try:
        settings = load_settings(
            config,
            overrides={
                "listen": tuple(listen or ()), "server": server, "token": token, "agent_id": agent_id,
                "switch_id": switch_id, "window": window, "spool_dir": spool_dir, "status_listen": status_listen,
                "receive_buffer": receive_buffer,
            },
        )  # fmt: skip
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from clarion_edge.collector import Agent

    agent = Agent(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        agent.start()
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    while not stop.wait(0.5) and not agent.fatal.is_set():
        pass
    agent.stop()
    if agent.fatal.is_set():
        raise typer.Exit(1)


@app.command()
def send(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="EdgeGraph JSON file.")],
    server: Annotated[str | None, typer.Option(envvar="CLARION_EDGE_SERVER", help="Clarion server base URL.")] = None,
    token: Annotated[str | None, typer.Option(envvar="CLARION_EDGE_TOKEN", help="Agent token.")] = None,
    retries: Annotated[int, typer.Option(help="Retries on connection errors, timeouts, 5xx and 429.")] = 3,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
) -> None:
    """POST one EdgeGraph file to the server and print its answer (sealing it first if it has no digest).

    Exit code 0 when applied or a duplicate, 1 when the server rejected or refused it, 2 when it could
    not be read or the server stayed unreachable.

    Example: clarion-edge send graph.json --server http://127.0.0.1:8000 --token $TOKEN
    """
    from clarion_edge.sender import Sender

    if not server or not token:
        typer.echo("error: --server and --token (or CLARION_EDGE_SERVER / CLARION_EDGE_TOKEN) are required", err=True)
        raise typer.Exit(2)
    try:
        graph = wire.decode(file.read_bytes())
    except (msgspec.DecodeError, msgspec.ValidationError, wire.WireError) as exc:
        typer.echo(f"error: {file} is not a valid EdgeGraph v1: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        with Sender(server, token, timeout=timeout, retries=retries) as sender:
            result = sender.send(graph)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    answer: dict[str, Any] = {"outcome": result.outcome, "status": result.status, "answer": result.body}
    if result.error:
        answer["error"] = result.error
    typer.echo(json.dumps(answer, indent=2, sort_keys=True))
    if not result.acked:
        raise typer.Exit(2 if result.outcome == "unavailable" else 1)
