"""pxGrid data-plane REST: Session Directory (getSessions, getSessionsForRecovery, getUserGroups) and the TrustSec
configuration service (getSecurityGroups, getSecurityGroupAcls).

Calls go to ``POST <restBaseUrl>/<op>`` with Basic ``nodeName:<AccessSecret for that provider node>``; providers are
tried in the (randomised) order ServiceLookup gave, and a 401 refetches the secret once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from clarion.sources.pxgrid.control import ControlClient, ServiceNode
from clarion.sources.pxgrid.errors import PxGridAuthError, PxGridError, ServiceUnavailableError
from clarion.sources.pxgrid.jsonstream import iter_array
from clarion.sources.pxgrid.transport import basic_auth, check_response, explain_transport_error

log = logging.getLogger(__name__)

SESSION_SERVICE = "com.cisco.ise.session"
TRUSTSEC_CONFIG_SERVICE = "com.cisco.ise.config.trustsec"


class NotSupported(PxGridError):  # noqa: N818 - reads as a fact about the ISE release, not a failure
    """The provider does not know this operation (older ISE release: 404/405)."""


class RestService:
    """One pxGrid service's REST operations, over whichever provider answers."""

    def __init__(self, control: ControlClient, client: httpx.Client, nodes: list[ServiceNode]) -> None:
        self.control = control
        self.client = client
        self.nodes = [n for n in nodes if n.rest_base_url]
        if not self.nodes:
            name = nodes[0].name if nodes else "service"
            raise ServiceUnavailableError(f"{name}: no provider advertises restBaseUrl")
        self._secrets: dict[str, str] = {}

    def _secret(self, node: ServiceNode, refresh: bool = False) -> str:
        if refresh or node.node_name not in self._secrets:
            self._secrets[node.node_name] = self.control.access_secret(node.node_name)
        return self._secrets[node.node_name]

    def _call(self, op: str, body: dict[str, Any], consume: Callable[[httpx.Response], Any]) -> Any:
        last: PxGridError | None = None
        settings = self.control.settings
        for node in self.nodes:
            url = f"{node.rest_base_url}/{op}"
            for attempt in (0, 1):
                auth = basic_auth(settings.node_name, self._secret(node, refresh=attempt == 1))
                try:
                    with self.client.stream("POST", url, json=body, headers={"Authorization": auth}) as resp:
                        if resp.status_code == 401 and attempt == 0:
                            continue  # the secret may have rotated with a failover: ask for a new one once
                        if resp.status_code in (404, 405):
                            raise NotSupported(f"{op} at {url}: HTTP {resp.status_code}; this ISE release lacks it")
                        if resp.status_code != 200:
                            resp.read()
                            return check_response(resp, op, settings.node_name)
                        return consume(resp)
                except httpx.TransportError as exc:
                    last = explain_transport_error(exc, url, settings)
                    if isinstance(last, PxGridAuthError):
                        raise last from exc
                    log.warning("pxGrid %s on %s failed: %s; trying the next provider", op, node.node_name, last)
                    break
        raise last or ServiceUnavailableError(f"{op}: no provider answered")

    def each(self, op: str, body: dict[str, Any], key: str, handle: Callable[[Any], None]) -> int:
        """Call ``op`` and hand each element of ``{key: [...]}`` to ``handle`` as it is parsed off the wire, so a
        bulk answer of any size needs memory for one element at a time. Returns the number of elements."""

        def consume(resp: httpx.Response) -> int:
            count = 0
            try:
                for item in iter_array(resp.iter_bytes(65536), key):
                    handle(item)
                    count += 1
            except ValueError as exc:
                raise PxGridError(f"{op} at {resp.request.url}: malformed JSON answer: {exc}") from exc
            return count

        result: int = self._call(op, body, consume)
        return result

    def collect(self, op: str, body: dict[str, Any], key: str) -> list[Any]:
        items: list[Any] = []
        self.each(op, body, key, items.append)
        return items

    def call_json(self, op: str, body: dict[str, Any]) -> Any:
        def consume(resp: httpx.Response) -> Any:
            resp.read()
            return check_response(resp, op, self.control.settings.node_name)

        return self._call(op, body, consume)


class SessionDirectory(RestService):
    """``com.cisco.ise.session``: bulk download, recovery after loss, and users' AD groups."""

    def get_sessions(self, handle: Callable[[Any], None], start_timestamp: str | None = None) -> int:
        body = {"startTimestamp": start_timestamp} if start_timestamp else {}
        return self.each("getSessions", body, "sessions", handle)

    def get_sessions_for_recovery(
        self, handle: Callable[[Any], None], start_timestamp: str, end_timestamp: str | None = None
    ) -> int:
        body = {"startTimestamp": start_timestamp}
        if end_timestamp:
            body["endTimestamp"] = end_timestamp
        return self.each("getSessionsForRecovery", body, "sessions", handle)

    def get_user_groups(self) -> Any:
        return self.call_json("getUserGroups", {})


class TrustSecConfig(RestService):
    """``com.cisco.ise.config.trustsec``: SGT name ↔ tag, and SGACL text."""

    def get_security_groups(self) -> list[Any]:
        return self.collect("getSecurityGroups", {}, "securityGroups")

    def get_security_group_acls(self) -> list[Any]:
        return self.collect("getSecurityGroupAcls", {}, "securityGroupAcls")
