"""``clarion ise sync``: read ISE's TrustSec policy over ERS and make the graph's copy equal it.

The operator's way to run :func:`clarion.identity.trustsec.sync_trustsec`: settings from ``CLARION_ISE_*``
(environment or a dotenv file; the password never on the command line), TLS verified unless ``--insecure``,
progress on stderr, a summary and one JSON line at the end, and an exit code per kind of failure so cron and
systemd can tell "ISE is down" from "the password changed".
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clarion.identity.ise_errors import (
    ERS_PORT,
    EXIT_ERS,
    EXIT_SETTINGS,
    SyncFailedError,
    classify,
)

if TYPE_CHECKING:
    from clarion.identity.trustsec import TrustSecSyncResult
    from clarion.sources.ers import ERSClient, ERSConfig
    from clarion.sources.ers_models import TrustSecConfig

ise_app = typer.Typer(help="Cisco ISE ERS: read SGTs, SGACLs and the egress matrix into the graph.")

MAX_ENV_FILE_BYTES = 64 * 1024
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*$")

ENV_HELP = (
    "Settings come from CLARION_ISE_HOST, CLARION_ISE_ERS_PORT, CLARION_ISE_ERS_USER, CLARION_ISE_ERS_PASSWORD, "
    "CLARION_ISE_CA_FILE, CLARION_ISE_CSRF, CLARION_ISE_TIMEOUT_S, CLARION_ISE_PAGE_SIZE, "
    "CLARION_ISE_MAX_CONCURRENCY (environment, ./.env or --env-file); options override them. "
    "The password is only read from there, never from the command line."
)


class ISESettings(BaseSettings):
    """``CLARION_ISE_*``: which ISE node answers ERS, the ERS account, and how to talk to it."""

    model_config = SettingsConfigDict(env_prefix="CLARION_ISE_", env_file=".env", extra="ignore")

    host: str | None = None
    ers_port: int = Field(default=ERS_PORT, ge=1, le=65535)
    ers_user: str | None = None
    ers_password: SecretStr | None = None
    ca_file: Path | None = None
    csrf: bool = False
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    page_size: int = Field(default=100, ge=1, le=100)
    max_concurrency: int = Field(default=8, ge=1, le=50)

    @field_validator("host", "ers_user", "ers_password", "ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def base_url(host: str, port: int) -> str:
    """``https://host:port`` from a bare host name or address; anything with a scheme, path or port is refused."""
    text = host.strip()
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        if not HOSTNAME_RE.match(text):
            raise ValueError(
                f"ISE host {host!r} is not a host name or IP address; give just the name, e.g. ise-pan.corp.local "
                f"(the scheme is always https and the port comes from --port, default {ERS_PORT})"
            ) from None
        return f"https://{text}:{port}"
    return f"https://[{ip}]:{port}" if ip.version == 6 else f"https://{ip}:{port}"


@dataclass
class Progress:
    """Counts ERS replies per resource and shows them on stderr (one updating line on a terminal)."""

    quiet: bool = False
    requests: int = 0
    per_resource: dict[str, int] = field(default_factory=dict)
    _last_shown: float = 0.0

    def response(self, path: str) -> None:
        self.requests += 1
        parts = path.split("/")  # /ers/config/<resource>[/<id>]
        resource = parts[3] if len(parts) > 3 else path
        self.per_resource[resource] = self.per_resource.get(resource, 0) + 1
        now = time.monotonic()
        if not self.quiet and sys.stderr.isatty() and now - self._last_shown > 0.2:
            self._last_shown = now
            typer.echo(f"\r  {resource}: {self.per_resource[resource]} requests", nl=False, err=True)

    def phase(self, message: str) -> None:
        if not self.quiet:
            typer.echo(f"\r{message:<60}" if sys.stderr.isatty() else message, err=True)


class _CountingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, telling :class:`Progress` about each reply (ERSClient takes a transport)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, on_response: Callable[[str], None]) -> None:
        self._inner = inner
        self._on_response = on_response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self._on_response(request.url.path)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def ers_client(config: ERSConfig, progress: Progress) -> ERSClient:
    """An ERSClient whose requests are counted; TLS exactly as ``config.verify`` says."""
    from clarion.sources.ers import ERSClient

    verify = ssl.create_default_context(cafile=config.verify) if isinstance(config.verify, str) else config.verify
    inner = httpx.AsyncHTTPTransport(verify=verify)
    return ERSClient(config, transport=_CountingTransport(inner, progress.response))


async def read_policy(config: ERSConfig, progress: Progress) -> TrustSecConfig:
    """SGTs, SGACLs, then the matrix (its cells name the other two by id), each phase reported."""
    from clarion.sources.ers_models import TrustSecConfig

    try:
        client = ers_client(config, progress)
    except (ssl.SSLError, OSError) as exc:
        raise SyncFailedError(
            f"CA bundle {config.verify}: cannot be loaded ({exc}); give a PEM file with the CA certificate that "
            "signed ISE's admin certificate",
            EXIT_SETTINGS,
        ) from exc
    async with client:
        phase = "reading Security Groups (sgt)"
        try:
            sgts = await client.security_groups()
            progress.phase(f"SGTs: {len(sgts)} read")
            phase = "reading SGACLs (sgacl)"
            acls = await client.sgacls()
            progress.phase(f"SGACLs: {len(acls)} read")
            phase = "reading egress matrix cells (egressmatrixcell)"
            cells = await client.egress_cells(sgts, acls)
            progress.phase(f"egress matrix cells: {len(cells)} read")
        except Exception as exc:
            raise classify(exc, config, phase) from exc
    return TrustSecConfig(sgts, acls, cells)


@ise_app.command("sync", epilog=ENV_HELP)
def ise_sync(
    host: Annotated[str | None, typer.Option(help="ISE node with ERS (the PAN), e.g. ise-pan.corp.local.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help=f"ERS port (default {ERS_PORT}).")] = None,
    user: Annotated[str | None, typer.Option(help="ERS account (default CLARION_ISE_ERS_USER).")] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA bundle (PEM) that signed ISE's admin certificate.", dir_okay=False)
    ] = None,
    insecure: Annotated[bool, typer.Option(help="Do NOT verify ISE's certificate (labs only).")] = False,
    timeout: Annotated[float | None, typer.Option(min=1, max=600, help="Seconds per request (default 30).")] = None,
    page_size: Annotated[int | None, typer.Option(min=1, max=100, help="ERS page size, 1-100 (default 100).")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=50, help="Requests in flight (default 8).")] = None,
    csrf: Annotated[bool | None, typer.Option(help="ISE's 'Enable CSRF Check' is on (default off).")] = None,
    env_file: Annotated[
        Path | None, typer.Option(help="Read CLARION_* settings from this dotenv file instead of ./.env.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress; only the JSON summary.")] = False,
) -> None:
    """Read SGTs, SGACLs and the egress matrix from ISE ERS and make the graph's TrustSec facts equal them.

    Only a complete read is applied, in one transaction with its deletions (SGACLs, cells, SGT definitions ISE
    no longer has), so a failure leaves the previous policy; an SGT devices still carry is kept, marked deleted.
    Exit codes: 0 done, 1 ISE or store error (a re-run converges), 2 settings, 3 unreachable, 4 TLS,
    5 authentication/authorisation, 6 malformed reply.
    Example: `clarion ise sync --host ise-pan.corp.local --user clarion-ers --ca-file ise-ca.pem`
    """
    config = _config(host, port, user, ca_file, insecure, timeout, page_size, concurrency, csrf, env_file)
    _check_store_settings(env_file)  # a bad CLARION_GRAPH_URL fails now, not after a long read
    if insecure:
        typer.secho(
            "WARNING: --insecure: ISE's certificate is NOT verified. Anyone on the path can impersonate ISE and "
            "read the ERS password. Use --ca-file in production.",
            fg="red", bold=True, err=True,
        )  # fmt: skip
    progress = Progress(quiet=quiet)
    progress.phase(f"reading TrustSec policy from ISE ERS at {config.base_url} as {config.username}")
    try:
        policy = asyncio.run(read_policy(config, progress))
    except SyncFailedError as e:
        if not quiet and sys.stderr.isatty():
            typer.echo("", err=True)
        raise _fail(f"ISE sync failed: {e}", e.code) from None
    _report(_merge(policy, env_file, config.base_url), progress, config, quiet)


def _config(
    host: str | None, port: int | None, user: str | None, ca_file: Path | None, insecure: bool,
    timeout: float | None, page_size: int | None, concurrency: int | None, csrf: bool | None, env_file: Path | None,
) -> ERSConfig:  # fmt: skip
    from clarion.sources.ers import ERSConfig

    if env_file is not None:
        _check_env_file(env_file)
    try:
        s = ISESettings(_env_file=env_file) if env_file is not None else ISESettings()
    except ValidationError as e:
        raise _fail(f"ISE settings (CLARION_ISE_*): {e}", EXIT_SETTINGS) from None
    host = host or s.host
    user = user or s.ers_user
    ca = ca_file or s.ca_file
    missing = [n for n, v in (("host (--host or CLARION_ISE_HOST)", host),
                              ("user (--user or CLARION_ISE_ERS_USER)", user),
                              ("password (CLARION_ISE_ERS_PASSWORD)", s.ers_password)) if not v]  # fmt: skip
    if missing or host is None or user is None or s.ers_password is None:
        raise _fail("ISE settings: missing " + ", ".join(missing) + ". " + ENV_HELP, EXIT_SETTINGS)
    if insecure and ca is not None:
        raise _fail("use either --ca-file (verify ISE against that CA) or --insecure (verify nothing), not both", 2)
    if ca is not None and not ca.is_file():
        raise _fail(f"CA bundle {ca} does not exist or is not a file (give the PEM that signed ISE's admin cert)", 2)
    verify: bool | str = False if insecure else (str(ca) if ca is not None else True)
    try:
        return ERSConfig(
            base_url=base_url(host, port or s.ers_port), username=user,
            password=s.ers_password.get_secret_value(), verify=verify, csrf=s.csrf if csrf is None else csrf,
            max_concurrency=concurrency or s.max_concurrency, page_size=page_size or s.page_size,
            timeout_s=timeout or s.timeout_s,
        )  # fmt: skip
    except ValueError as e:
        raise _fail(f"ISE settings: {e}", EXIT_SETTINGS) from None


def _check_store_settings(env_file: Path | None) -> None:
    from clarion.config import Settings

    try:
        Settings(_env_file=env_file) if env_file is not None else Settings()
    except ValidationError as e:
        raise _fail(f"invalid store settings (CLARION_*):\n{e}", EXIT_SETTINGS) from None


def _check_env_file(path: Path) -> None:
    if not path.is_file():
        raise _fail(f"--env-file {path}: no such file", EXIT_SETTINGS)
    if path.stat().st_size > MAX_ENV_FILE_BYTES:
        raise _fail(f"--env-file {path}: {path.stat().st_size} bytes; a settings file is at most 64 KiB", 2)


def _merge(policy: TrustSecConfig, env_file: Path | None, base: str) -> TrustSecSyncResult:
    """Apply the complete read to the store CLARION_GRAPH_URL / CLARION_DATA_DIR names, all of it or none of it."""
    from clarion.identity.cli import _open_store
    from clarion.identity.trustsec import sync_trustsec
    from clarion.store.port import StoreError

    store = _open_store(env_file)
    try:
        return sync_trustsec(store, policy)
    except StoreError as e:
        read = {"sgts": len(policy.security_groups), "sgacls": len(policy.sgacls), "egress_cells": len(policy.cells)}
        typer.echo(json.dumps({"host": base, "ok": False, "failed": "store", "read": read, "partial": False}))
        raise _fail(
            f"ISE sync: the ERS read succeeded but the graph store failed while applying it: {e}. The sync is one "
            "transaction, so the graph still holds the previous policy (or, had the store failed while confirming "
            "the commit, all of this one), never a mix. Run `clarion ise sync` again once the store is back: it "
            "converges to ISE's policy",
            EXIT_ERS,
        ) from None
    finally:
        store.close()


def _report(result: TrustSecSyncResult, progress: Progress, config: ERSConfig, quiet: bool) -> None:
    """A line per kind on stderr, then one JSON object on stdout with the same counts."""
    kinds = {"sgts": result.sgts, "sgacls": result.sgacls, "egress_cells": result.cells}
    if not quiet:
        label = {"sgts": "SGTs", "sgacls": "SGACLs", "egress_cells": "egress matrix cells"}
        lines = [
            f"{label[k]}: {c.added} added, {c.updated} updated, {c.unchanged} unchanged, {c.removed} removed "
            f"(ISE no longer has them)"
            for k, c in kinds.items()
        ]
        lines += [
            f"SGT nodes: {result.removed_sgt_nodes} removed (ISE deleted them and nothing refers to them), "
            f"{result.kept_deleted_sgts} kept marked deleted because devices still carry them",
            f"applied in one transaction ({progress.requests} ERS requests, merge {result.seconds:.2f} s)",
        ]
        typer.echo("\n".join(lines), err=True)
    counts: dict[str, object] = {
        k: {"read": c.read, "added": c.added, "updated": c.updated, "unchanged": c.unchanged, "removed": c.removed}
        for k, c in kinds.items()
    }
    summary = {
        "host": config.base_url, "ok": True, **counts, "removed_sgt_nodes": result.removed_sgt_nodes,
        "kept_deleted_sgts": result.kept_deleted_sgts, "requests": progress.requests,
        "merge_seconds": round(result.seconds, 3),
    }  # fmt: skip
    typer.echo(json.dumps(summary))
