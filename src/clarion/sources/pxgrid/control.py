"""pxGrid 2.0 control plane: AccountCreate, AccountActivate, ServiceLookup and AccessSecret.

Every call is ``POST https://<node>:8910/pxgrid/control/<Method>`` with Basic ``nodeName:password`` (certificate
accounts send ``nodeName:`` with an empty password and authenticate by mutual TLS). Nodes are tried in turn.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from clarion.sources.pxgrid.errors import AccountDisabledError, PxGridAuthError, PxGridError, ServiceUnavailableError
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.transport import basic_auth, check_response, explain_transport_error

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """One provider of a service as ServiceLookup returns it."""

    name: str
    node_name: str
    properties: dict[str, str] = field(default_factory=dict)

    def prop(self, *keys: str) -> str | None:
        """First present property among ``keys`` (``restBaseUrl`` before its deprecated ``restBaseURL``)."""
        for key in keys:
            value = self.properties.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def rest_base_url(self) -> str | None:
        return self.prop("restBaseUrl", "restBaseURL")

    @property
    def ws_url(self) -> str | None:
        return self.prop("wsUrl", "WSURL")


class ControlClient:
    """Talks to the control plane of one ISE deployment, falling back through ``settings.hosts``."""

    def __init__(self, settings: PxGridSettings, client: httpx.Client, password: str | None = None) -> None:
        self.settings = settings
        self.client = client
        self.password = password or ""

    # -- plumbing -------------------------------------------------------------------------------------------
    def _post(self, method: str, body: dict[str, Any], *, auth: bool = True) -> Any:
        headers = {"Authorization": basic_auth(self.settings.node_name, self.password)} if auth else {}
        last: PxGridError | None = None
        for host in self.settings.hosts:
            url = f"https://{host}:{self.settings.port}/pxgrid/control/{method}"
            try:
                resp = self.client.post(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                last = explain_transport_error(exc, url, self.settings)
                if isinstance(last, PxGridAuthError):
                    raise last from exc
                log.warning("pxGrid control %s: %s; trying the next node", method, last)
                continue
            return check_response(resp, method, self.settings.node_name)
        raise last or PxGridError("no pxGrid hosts configured")

    # -- accounts -------------------------------------------------------------------------------------------
    def account_create(self) -> str:
        """Create a password account (no Authorization header); returns the password ISE generated."""
        try:
            reply = self._post("AccountCreate", {"nodeName": self.settings.node_name}, auth=False)
        except PxGridError as exc:
            raise PxGridError(
                f"AccountCreate for {self.settings.node_name!r} failed: {exc}. ISE refuses it unless "
                "'Allow password based account creation' is on (Administration > pxGrid Services > Settings), "
                "and answers 409 when the node name already exists"
            ) from exc
        password = reply.get("password") if isinstance(reply, dict) else None
        if not isinstance(password, str) or not password:
            raise PxGridError(f"AccountCreate answered without a password: {str(reply)[:200]}")
        self.password = password
        return password

    def load_or_create_password(self, path: Path) -> str:
        """Read the stored password; on first start create the account and store its password with mode 0600."""
        if path.exists():
            self.password = path.read_text(encoding="utf-8").strip()
            if not self.password:
                raise PxGridError(f"password_file {path} is empty; delete it to create a new account")
            return self.password
        password = self.account_create()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        log.info("created pxGrid password account %s; password stored in %s", self.settings.node_name, path)
        return password

    def account_activate(self) -> str:
        reply = self._post("AccountActivate", {"description": self.settings.description})
        state = reply.get("accountState") if isinstance(reply, dict) else None
        if state not in {"PENDING", "ENABLED", "DISABLED"}:
            raise PxGridError(f"AccountActivate answered an unknown accountState: {str(reply)[:200]}")
        return str(state)

    def wait_enabled(self, stop: threading.Event, on_state: Callable[[str], None] | None = None) -> None:
        """Poll AccountActivate until ENABLED: every ``pending_retry_s`` while PENDING, ``disabled_retry_s`` while
        DISABLED (logged as an error an administrator must fix). Returns early only if ``stop`` is set."""
        while not stop.is_set():
            state = self.account_activate()
            if on_state:
                on_state(state)
            if state == "ENABLED":
                return
            if state == "PENDING":
                log.warning(
                    "pxGrid account %r is PENDING approval in ISE (Administration > pxGrid Services > Client "
                    "Management); asking again in %.0f s",
                    self.settings.node_name,
                    self.settings.pending_retry_s,
                )
                stop.wait(self.settings.pending_retry_s)
            else:
                log.error("%s; asking again in %.0f s", self.disabled_message(), self.settings.disabled_retry_s)
                stop.wait(self.settings.disabled_retry_s)

    def disabled_message(self) -> str:
        return str(
            AccountDisabledError(
                f"pxGrid account {self.settings.node_name!r} is DISABLED in ISE; an administrator must enable it "
                "(Administration > pxGrid Services > Client Management)"
            )
        )

    # -- services -------------------------------------------------------------------------------------------
    def service_lookup(self, name: str) -> list[ServiceNode]:
        """Providers of ``name`` in ISE's (randomised) order; ``ServiceUnavailableError`` when there are none."""
        reply = self._post("ServiceLookup", {"name": name})
        services = reply.get("services") if isinstance(reply, dict) else None
        if not isinstance(services, list):
            raise PxGridError(f"ServiceLookup {name}: answer has no services array: {str(reply)[:200]}")
        nodes = [
            ServiceNode(
                str(s.get("name", name)),
                s["nodeName"],
                {k: v for k, v in (s.get("properties") or {}).items() if isinstance(v, str)},
            )
            for s in services
            if isinstance(s, dict) and isinstance(s.get("nodeName"), str)
        ]
        if not nodes:
            raise ServiceUnavailableError(f"pxGrid service {name} has no provider (ServiceLookup returned none)")
        return nodes

    def access_secret(self, peer_node_name: str) -> str:
        reply = self._post("AccessSecret", {"peerNodeName": peer_node_name})
        secret = reply.get("secret") if isinstance(reply, dict) else None
        if not isinstance(secret, str) or not secret:
            raise PxGridError(f"AccessSecret for peer {peer_node_name!r} answered no secret")
        return secret
