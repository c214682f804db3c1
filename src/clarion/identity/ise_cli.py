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

if TYPE_CHECKING:
    from clarion.identity.trustsec import TrustSecSyncResult
    from clarion.sources.ers import ERSClient, ERSConfig
    from clarion.sources.ers_models import TrustSecConfig

ise_app = typer.Typer(help="Cisco ISE ERS: read SGTs, SGACLs and the egress matrix into the graph.")

ERS_PORT = 9060
MAX_ENV_FILE_BYTES = 64 * 1024
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*$")

# exit codes (documented in docs/operations.md); 2 is also typer's own for a bad option
EXIT_ERS = 1  # ISE answered with an error (5xx, 404...) or the graph store failed
EXIT_SETTINGS = 2
EXIT_UNREACHABLE = 3
EXIT_TLS = 4
EXIT_AUTH = 5
EXIT_MALFORMED = 6

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


class SyncFailedError(Exception):
    """A sync that stopped before anything was removed: the message to print and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


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


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _tls_failure(exc: BaseException) -> bool:
    """A handshake or certificate error; SSLWantRead/Write only say a read was pending when something else hit."""
    return isinstance(exc, ssl.SSLError) and not isinstance(exc, (ssl.SSLWantReadError, ssl.SSLWantWriteError))


def classify(exc: Exception, config: ERSConfig, phase: str) -> SyncFailedError:
    """Turn what the read raised into the operator's message and exit code."""
    from clarion.sources.ers import GET_RETRIES
    from clarion.sources.ers_models import ERSAuthError, ERSError, ERSForbiddenError

    target = config.base_url
    nothing = "nothing in the graph was changed"
    if isinstance(exc, ERSAuthError):
        return SyncFailedError(
            f"ISE ERS at {target} refused the account {config.username!r} (HTTP 401) while {phase}: wrong user or "
            "password, or the account is not in the ERS Admin or ERS Operator admin group; " + nothing,
            EXIT_AUTH,
        )
    if isinstance(exc, ERSForbiddenError):
        return SyncFailedError(
            f"ISE ERS at {target} forbade the request (HTTP 403) while {phase}: {exc}. ERS may be disabled "
            "(Administration > System > Settings > API Settings > ERS Read/Write) or the account lacks the "
            "ERS Admin/ERS Operator role; " + nothing,
            EXIT_AUTH,
        )
    chain = _chain(exc)
    if any(isinstance(e, httpx.TimeoutException) and not isinstance(e, httpx.ConnectTimeout) for e in chain):
        return SyncFailedError(
            f"ISE ERS at {target} did not answer within {config.timeout_s:g} s ({1 + GET_RETRIES} tries) "
            f"while {phase}: {exc}. "
            "ISE may be overloaded: retry later, raise --timeout or lower --concurrency; " + nothing,
            EXIT_UNREACHABLE,
        )
    if any(_tls_failure(e) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        how = f"with the CA bundle {config.verify}" if isinstance(config.verify, str) else "with the system CAs"
        hint = (
            f"ISE's admin certificate did not verify {how}: pass the CA that signed it with --ca-file "
            "(or CLARION_ISE_CA_FILE)"
            if any("CERTIFICATE_VERIFY_FAILED" in str(e) for e in chain)
            else "the TLS handshake failed: is this ISE's ERS port, and does it speak TLS 1.2 or later?"
        )
        return SyncFailedError(f"TLS with ISE at {target} failed while {phase}: {exc}. {hint}; " + nothing, EXIT_TLS)
    if any(isinstance(e, (httpx.ConnectError, httpx.TimeoutException, OSError)) for e in chain):
        return SyncFailedError(
            f"cannot reach ISE ERS at {target} while {phase}: {exc}. Is the host right, is ERS enabled on it (it "
            f"listens on port {ERS_PORT} only when enabled), and does a firewall let this host in? " + nothing,
            EXIT_UNREACHABLE,
        )
    if isinstance(exc, ERSError) and exc.status is not None and exc.status < 300:
        return SyncFailedError(f"malformed ERS response from {target} while {phase}: {exc}; " + nothing, EXIT_MALFORMED)
    if isinstance(exc, ERSError):
        return SyncFailedError(f"ISE ERS at {target} failed while {phase}: {exc}; " + nothing, EXIT_ERS)
    if isinstance(exc, (KeyError, TypeError, ValueError, AttributeError)):
        return SyncFailedError(
            f"malformed ERS response from {target} while {phase}: {type(exc).__name__}: {exc}; " + nothing,
            EXIT_MALFORMED,
        )
    raise exc


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

    Deletions (SGACLs, cells, SGT definitions ISE no longer has) are applied only after the whole read
    succeeded and merged; an SGT devices still carry is kept, marked deleted. Exit codes: 0 done, 1 ISE or
    store error, 2 settings, 3 unreachable, 4 TLS, 5 authentication/authorisation, 6 malformed reply.
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
    result, kept = _merge(policy, env_file)
    _report(result, kept, progress, config, quiet)


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


def _merge(policy: TrustSecConfig, env_file: Path | None) -> tuple[TrustSecSyncResult, int]:
    """Merge the complete read into the store CLARION_GRAPH_URL / CLARION_DATA_DIR names; removals come last.

    Also counts the SGTs kept marked deleted (ISE dropped them, devices still carry them), this read's and earlier.
    """
    from clarion.identity.cli import _open_store
    from clarion.identity.trustsec import sync_trustsec
    from clarion.store.port import StoreError

    store = _open_store(env_file)
    try:
        result = sync_trustsec(store, policy)
        rows = store.read("query/identity_trustsec_kept_deleted")
        return result, int(rows[0]["kept"])
    except StoreError as e:
        raise _fail(
            f"ISE sync: the ERS read succeeded but the graph store failed: {e}. Nothing was removed; what merged "
            "before the failure stays and the next run completes it",
            EXIT_ERS,
        ) from None
    finally:
        store.close()


def _report(result: TrustSecSyncResult, kept: int, progress: Progress, config: ERSConfig, quiet: bool) -> None:
    if not quiet:
        lines = (
            f"merged {result.security_groups} SGTs, {result.sgacls} SGACLs, {result.egress_cells} egress matrix cells "
            f"({progress.requests} ERS requests, merge {result.seconds:.2f} s)",
            f"removed {result.removed_sgacls} SGACLs and {result.removed_sgts} SGTs that ISE no longer has "
            "(and nothing refers to)",
            f"kept {kept} SGTs ISE deleted, marked deleted, because devices still carry them "
            f"({result.deleted_sgts} found deleted by this read)",
        )
        typer.echo("\n".join(lines), err=True)
    summary = {
        "host": config.base_url, "security_groups": result.security_groups, "sgacls": result.sgacls,
        "egress_cells": result.egress_cells, "removed_sgacls": result.removed_sgacls,
        "deleted_sgts": result.deleted_sgts, "removed_sgts": result.removed_sgts, "kept_deleted_sgts": kept,
        "requests": progress.requests, "merge_seconds": round(result.seconds, 3),
    }  # fmt: skip
    typer.echo(json.dumps(summary))
