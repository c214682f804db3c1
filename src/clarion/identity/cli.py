"""``clarion import sessions FILE`` and ``clarion ad sync``: identity from files and Active Directory.

Both write into the local store directly (the embedded FalkorDB or CLARION_GRAPH_URL), or — for sessions —
send to a running server with ``--server`` and a token, exactly as the pxGrid service does.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from clarion.store.port import GraphStore

import_app = typer.Typer(help="Import identity data (sessions from a NAC export) into the graph.", no_args_is_help=True)
MAX_MARK_BYTES = 4096  # a SyncMark is ~200 bytes of JSON; anything bigger is not one
ad_app = typer.Typer(help="Active Directory: read users, groups, nesting and computers into the graph.")


class ADSettings(BaseSettings):
    """``CLARION_AD_*``: where the directory is and the service account that reads it."""

    model_config = SettingsConfigDict(env_prefix="CLARION_AD_", env_file=".env", extra="ignore")

    url: str
    bind_dn: str
    password: SecretStr
    base_dn: str | None = None
    start_tls: bool = False
    ca_file: str | None = None
    verify_tls: bool = True


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


@import_app.command("sessions")
def import_sessions(
    file: Annotated[Path, typer.Argument(help="CSV (with header) or JSON sessions file.", exists=True, dir_okay=False)],
    server: Annotated[
        str | None, typer.Option(help="Send to this Clarion server (https://host:8000) instead of the local store.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="CLARION_TOKEN", help="Admin or identity token for --server.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Sessions per request with --server.")] = 5_000,
) -> None:
    """Import sessions (MAC, IPs, user, SGT, switch, port, VLAN, start, profile); all or nothing.

    Rows without a start time are taken as seen now. Example: `clarion import sessions nac-export.csv`
    """
    from clarion.sources.sessions_file import SessionsFileError, load_sessions_file

    try:
        sessions = load_sessions_file(file)
    except SessionsFileError as e:
        raise _fail(str(e)) from None
    now = int(time.time() * 1000)
    sessions = [s if s.timestamp_ms else dataclasses.replace(s, timestamp_ms=now) for s in sessions]
    if server is not None:
        from clarion.sources.pxgrid.errors import SinkError
        from clarion.sources.pxgrid.sink import HttpSink

        if not token:
            raise _fail("--server needs --token (or CLARION_TOKEN): an admin or identity token")
        try:
            sink = HttpSink(server, token, batch=batch)
            try:
                sink.apply(sessions)
            finally:
                sink.close()
        except (ValueError, SinkError) as e:
            raise _fail(str(e), 1) from None
        typer.echo(json.dumps({"sessions": len(sessions), "server": server}))
        return
    from clarion.identity.payload import IdentityBatch
    from clarion.identity.service import apply_identity

    store = _open_store()
    try:
        result = apply_identity(store, IdentityBatch(sessions=sessions))
    finally:
        store.close()
    typer.echo(json.dumps(result.as_json()))


@ad_app.command("sync")
def ad_sync(
    since_usn: Annotated[
        int | None, typer.Option(min=0, help="Incremental: only what changed at or after this uSNChanged.")
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            help="Resume from the mark the last successful sync stored (deletions included); full when there is "
            "none or it is no longer valid (other DC, restored DC, older than the tombstone lifetime)."
        ),
    ] = False,
    mark_file: Annotated[
        Path | None,
        typer.Option(
            help="Where the resume mark is kept (default: <data dir>/ad-sync-mark-<graph>.json).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Sync AD into the local store (CLARION_AD_URL, CLARION_AD_BIND_DN, CLARION_AD_PASSWORD, CLARION_AD_BASE_DN).

    A full sync (the default) removes AD users' memberships and groups AD no longer has, and only after the
    whole sync merged; a failed sync changes nothing. Every successful sync stores its mark for --incremental.
    """
    from clarion.identity.directory import sync_and_merge
    from clarion.sources.ad import ADConfig, ADError
    from clarion.sources.model import SyncMark

    if incremental and since_usn is not None:
        raise _fail("use either --incremental (resume from the stored mark) or --since-usn, not both")
    try:
        s = ADSettings()  # fields come from the environment
        config = ADConfig(
            url=s.url, bind_user=s.bind_dn, password=s.password.get_secret_value(), base_dn=s.base_dn,
            start_tls=s.start_tls, ca_file=s.ca_file, verify_tls=s.verify_tls,
        )  # fmt: skip
    except (ValidationError, ValueError) as e:
        raise _fail(f"AD settings: {e}") from None
    store, settings_mark = _open_store_and_mark()
    path = mark_file or settings_mark
    mark = None
    if incremental and path.is_file():
        try:
            if path.stat().st_size > MAX_MARK_BYTES:
                raise ValueError(f"{path}: {path.stat().st_size} bytes; a sync mark is at most {MAX_MARK_BYTES}")
            mark = SyncMark.from_json(path.read_text(encoding="utf-8"), where=str(path))
        except (OSError, ValueError) as e:
            store.close()
            raise _fail(f"{e}; delete the file to start over with a full sync") from None
    elif incremental:
        typer.secho(f"no AD sync mark at {path}: running a full sync", err=True)
    try:
        result = sync_and_merge(store, config, since_usn, resume_from=mark)
    except ADError as e:
        raise _fail(f"AD sync failed, nothing was changed: {e}", 1) from None
    finally:
        store.close()
    if result.full_reason:
        typer.secho(f"full sync instead of incremental: {result.full_reason}", err=True)
    if result.mark is not None and since_usn is None:  # only after the merge succeeded; never from a partial sync
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(result.mark.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
    typer.echo(json.dumps(dataclasses.asdict(result)))


def _open_store_and_mark() -> tuple[GraphStore, Path]:
    """The store, and where this graph's AD resume mark lives (next to the embedded store's data)."""
    from clarion.config import Settings

    try:
        settings = Settings()
    except ValidationError as e:
        raise _fail(f"invalid settings:\n{e}") from None
    return _open_store(), Path(settings.data_dir) / f"ad-sync-mark-{settings.graph_name}.json"


def _open_store(env_file: Path | None = None) -> GraphStore:
    """The store CLARION_GRAPH_URL names (embedded FalkorDB in CLARION_DATA_DIR when unset), schema ready."""
    from clarion.config import Settings
    from clarion.store.factory import open_store

    try:
        settings = Settings(_env_file=env_file) if env_file is not None else Settings()
    except ValidationError as e:
        raise _fail(f"invalid settings:\n{e}") from None
    try:
        store = open_store(settings)
    except Exception as e:  # each store's client raises its own kinds; the operator needs which store and why
        raise _fail(f"cannot open the graph store ({settings.graph_url or settings.data_dir}): {e}", 1) from None
    try:
        store.ensure_schema()
    except Exception as e:
        store.close()
        raise _fail(f"graph store {settings.graph_url or settings.data_dir} is not usable: {e}", 1) from None
    return store
