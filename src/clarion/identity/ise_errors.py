"""How ``clarion ise sync`` names what went wrong: one exit code per kind of failure, and a message saying
what failed, where, and what to check, so cron and systemd can tell "ISE is down" from "the password changed".
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from clarion.sources.ers import ERSConfig

ERS_PORT = 9060

# exit codes (documented in docs/operations.md); 2 is also typer's own for a bad option
EXIT_ERS = 1  # ISE answered with an error (5xx, 404...) or the graph store failed (nothing applied: re-run)
EXIT_SETTINGS = 2
EXIT_UNREACHABLE = 3
EXIT_TLS = 4
EXIT_AUTH = 5
EXIT_MALFORMED = 6


class SyncFailedError(Exception):
    """A sync that stopped before anything was removed: the message to print and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


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
