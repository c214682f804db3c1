"""TLS and HTTP plumbing shared by the control plane and the data-plane REST calls.

One ``ssl.SSLContext`` serves httpx and the WebSocket alike: ISE expects the same client certificate on both planes.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import httpx

from clarion.sources.pxgrid.errors import PxGridAuthError, PxGridError
from clarion.sources.pxgrid.settings import PxGridSettings

# OpenSSL reasons that mean "the server did not accept our certificate" (as opposed to us rejecting its certificate).
_PEER_REFUSED_CERT = (
    "alert bad certificate",
    "alert unknown ca",
    "alert certificate required",
    "alert handshake failure",
    "alert certificate unknown",
    "alert access denied",
    "alert decrypt error",
)


def ssl_context(settings: PxGridSettings) -> ssl.SSLContext:
    """Trust ``ca_cert`` (else the system store) and present the client certificate in certificate mode."""
    cafile = str(settings.ca_cert) if settings.ca_cert else None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    ctx.check_hostname = settings.verify_hostname
    if settings.client_cert is not None:
        try:
            ctx.load_cert_chain(str(settings.client_cert), str(settings.client_key) if settings.client_key else None)
        except (OSError, ssl.SSLError) as exc:
            raise PxGridError(
                f"cannot load the pxGrid client certificate {settings.client_cert} / key {settings.client_key}: {exc}"
            ) from exc
    return ctx


def basic_auth(user: str, password: str) -> str:
    """The Authorization value pxGrid wants; certificate accounts pass ``password=""`` (``nodeName:``)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def http_client(settings: PxGridSettings, ctx: ssl.SSLContext) -> httpx.Client:
    return httpx.Client(
        verify=ctx,
        timeout=httpx.Timeout(settings.http_timeout_s),
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        follow_redirects=False,
    )


def explain_transport_error(exc: Exception, url: str, settings: PxGridSettings) -> PxGridError:
    """Turn a connection/TLS failure into an error that says which side refused what."""
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        text += " " + str(cause)
        cause = cause.__cause__ or cause.__context__
    low = text.lower()
    if "certificate_verify_failed" in low or "certificate verify failed" in low:
        return PxGridError(
            f"{url}: ISE's TLS certificate is not trusted ({exc}); set ca_cert to the CA that signed the pxGrid "
            "certificate (Administration > System > Certificates), or check the host name"
        )
    if settings.cert_mode and ("disconnected without sending" in low or "unexpected eof" in low):
        return PxGridError(
            f"{url}: the pxGrid node closed the connection without answering; under TLS 1.3 that is also how a node "
            f"that refused our client certificate {settings.client_cert} behaves: check that it is issued by a CA in "
            "ISE's Trusted Certificates with 'Trust for client authentication' ticked"
        )
    if any(reason in low for reason in _PEER_REFUSED_CERT) or "eof occurred in violation" in low:
        what = f"client certificate {settings.client_cert}" if settings.cert_mode else "TLS handshake (no client cert)"
        return PxGridAuthError(
            f"{url}: the pxGrid node refused our {what} ({exc}); the certificate must be issued by a CA in ISE's "
            "Trusted Certificates with 'Trust for client authentication' ticked"
        )
    return PxGridError(f"{url}: cannot reach the pxGrid node: {exc}")


def check_response(resp: httpx.Response, what: str, node_name: str) -> Any:
    """Map HTTP errors to clear exceptions and return the parsed JSON (or None for 204)."""
    if resp.status_code == 401:
        raise PxGridAuthError(
            f"{what} at {resp.request.url}: 401 Unauthorized for nodeName {node_name!r}; the account is unknown to "
            "ISE, the password/secret is wrong, or the client certificate does not match the node name"
        )
    if resp.status_code == 403:
        raise PxGridAuthError(
            f"{what} at {resp.request.url}: 403 Forbidden for nodeName {node_name!r}; the account is not ENABLED "
            "or not authorized for this service (check its group in Administration > pxGrid Services)"
        )
    if resp.status_code == 204:
        return None
    if resp.status_code >= 300:
        raise PxGridError(f"{what} at {resp.request.url}: HTTP {resp.status_code} {resp.text[:200]!r}")
    try:
        return resp.json()
    except ValueError as exc:
        raise PxGridError(f"{what} at {resp.request.url}: response is not JSON ({exc})") from exc
