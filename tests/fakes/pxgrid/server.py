"""A fake Cisco ISE pxGrid 2.0 node on 127.0.0.1 over real TLS, faithful to shared/reference §1.

One aiohttp server plays the PAN (control plane), the MnT node (Session Directory REST), the admin node (TrustSec
config REST) and the pubsub node (WebSocket, binary STOMP 1.2), like a single-node ISE on port 8910. Test hooks
script account approval, publishing, sequence jumps/resets, disconnects and malformed messages.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import secrets
import socket
import ssl
import string
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import DEFAULT_SGTS
from tests.fakes.pxgrid.pubsub import (
    GROUP_TOPIC,
    SESSION_TOPIC,
    SESSION_TOPIC_ALL,
    SG_TOPIC,
    SGACL_TOPIC,
    PubSubNode,
    Subscriber,
)

MNT, PUBSUB, ADMIN, DEAD_MNT = "~ise-mnt-fake1", "~ise-pubsub-fake1", "~ise-admin-fake1", "~ise-mnt-fake2"


@dataclass
class Account:
    kind: str  # "password" | "cert"
    state: str = "PENDING"
    password: str = ""
    description: str = ""
    activations: int = 0


def _ts_ms(text: str) -> int:
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return round(t.timestamp() * 1000)


def _alnum(n: int = 16) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


class FakePxGrid(PubSubNode):
    """Start with ``start()``; every hook is callable from the test thread."""

    def __init__(
        self,
        pki: Pki,
        *,
        auto_approve: bool = False,
        allow_password_accounts: bool = True,
        recovery_supported: bool = True,
        dead_mnt_node: bool = True,
        topic_all: bool = False,
    ) -> None:
        self.pki = pki
        self.auto_approve = auto_approve
        self.allow_password_accounts = allow_password_accounts
        self.recovery_supported = recovery_supported
        self.dead_mnt_node = dead_mnt_node
        self.topic_all = topic_all  # ISE 3.3p2+/3.4: sessionTopicAll, also sessions without an IP address
        self.accounts: dict[str, Account] = {}
        self.secrets: dict[tuple[str, str], str] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # MAC -> newest session (what getSessions returns)
        self.published: list[dict[str, Any]] = []  # every session ever published, in order
        self.security_groups = [
            {"id": f"sg-{tag}", "name": name, "description": "", "tag": tag} for name, tag in DEFAULT_SGTS.items()
        ]
        self.sgacls = [
            {
                "id": "acl-1",
                "name": "Permit_Web",
                "description": "",
                "ipVersion": "IPV4",
                "acl": "permit tcp dst eq 443\npermit tcp dst eq 80",
                "generationId": "1",
            }
        ]
        self.user_groups: dict[str, list[dict[str, str]]] = {}
        self.seq: dict[str, int] = {}
        self.subscribers: list[Subscriber] = []
        self.ws_available = True
        self.answer_pings = True  # False: a hung pubsub node that never pongs
        self.rest_bodies: list[tuple[str, dict[str, Any]]] = []  # Session Directory requests, in order
        self.withdrawn: set[str] = set()  # services ServiceLookup answers with no provider
        self.calls: list[tuple[str, str]] = []  # (path, nodeName) of every authenticated call
        self.ws_connects = 0
        self.connect_headers: list[dict[str, str]] = []  # STOMP CONNECT headers, for protocol assertions
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-pxgrid", daemon=True)
        self._runner: web.AppRunner | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.base = f"https://127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        ctx.verify_mode = ssl.CERT_OPTIONAL  # password accounts come without a cert; a bad cert still fails
        return ctx

    def start(self) -> FakePxGrid:
        self._thread.start()
        self._run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/pxgrid/control/{method}", self._control)
        app.router.add_post("/pxgrid/mnt/sd/{op}", self._session_rest)
        app.router.add_post("/pxgrid/ise/config/trustsec/{op}", self._trustsec_rest)
        app.router.add_get("/pxgrid/ise/pubsub", self._pubsub)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock, ssl_context=self._ssl()).start()

    def stop(self) -> None:
        async def _stop() -> None:
            for sub in list(self.subscribers):
                await sub.ws.close()
            if self._runner is not None:
                await self._runner.cleanup()

        self._run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    # -- authentication -------------------------------------------------------------------------------------
    @staticmethod
    def _basic(request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user.lower(), pw

    @staticmethod
    def _peer_cn(request: web.Request) -> str | None:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport else None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value).lower()
        return None

    def _account(self, request: web.Request, *, activating: bool = False) -> tuple[str, Account]:
        creds = self._basic(request)
        if creds is None:
            raise web.HTTPUnauthorized(text="missing Basic authorization")
        user, pw = creds
        acct = self.accounts.get(user)
        cn = self._peer_cn(request)
        if acct is None and activating and cn == user:
            acct = self.accounts[user] = Account("cert", "ENABLED" if self.auto_approve else "PENDING")
        if acct is None:
            raise web.HTTPUnauthorized(text="unknown account")
        if acct.kind == "password" and pw != acct.password:
            raise web.HTTPUnauthorized(text="bad password")
        if acct.kind == "cert" and cn != user:
            raise web.HTTPUnauthorized(text="client certificate missing or not for this node")
        return user, acct

    def _data_auth(self, request: web.Request, peer: str) -> str:
        creds = self._basic(request)
        if creds is None or self.secrets.get((creds[0], peer)) != creds[1]:
            raise web.HTTPUnauthorized(text="bad access secret")
        acct = self.accounts.get(creds[0])
        if acct is None or acct.state != "ENABLED" or (acct.kind == "cert" and self._peer_cn(request) != creds[0]):
            raise web.HTTPUnauthorized(text="account not enabled or certificate mismatch")
        self.calls.append((request.path, creds[0]))
        return creds[0]

    # -- control plane --------------------------------------------------------------------------------------
    def _services(self, name: str) -> list[dict[str, Any]]:
        b = self.base
        if name == "com.cisco.ise.session":
            sd = f"{b}/pxgrid/mnt/sd"
            props = {
                "groupTopic": GROUP_TOPIC,
                "restBaseURL": sd,
                "restBaseUrl": sd,
                "sessionTopic": SESSION_TOPIC,
                **({"sessionTopicAll": SESSION_TOPIC_ALL} if self.topic_all else {}),
                "wsPubsubService": "com.cisco.ise.pubsub",
            }
            out = [{"name": name, "nodeName": MNT, "properties": props}]
            if self.dead_mnt_node:  # a second MnT that is down: clients must fall back through the list
                dead = dict(
                    props,
                    restBaseURL="https://127.0.0.1:1/pxgrid/mnt/sd",
                    restBaseUrl="https://127.0.0.1:1/pxgrid/mnt/sd",
                )
                out.append({"name": name, "nodeName": DEAD_MNT, "properties": dead})
            return out
        if name == "com.cisco.ise.pubsub":
            return [
                {
                    "name": name,
                    "nodeName": PUBSUB,
                    "properties": {"wsUrl": f"wss://127.0.0.1:{self.port}/pxgrid/ise/pubsub"},
                }
            ]
        if name == "com.cisco.ise.config.trustsec":
            url = f"{b}/pxgrid/ise/config/trustsec"
            props = {
                "restBaseUrl": url,
                "restBaseURL": url,
                "wsPubsubService": "com.cisco.ise.pubsub",
                "securityGroupTopic": SG_TOPIC,
                "securityGroupAclTopic": SGACL_TOPIC,
                "securityGroupVnVlanTopic": SG_TOPIC + ".vnvlan",
            }
            return [{"name": name, "nodeName": ADMIN, "properties": props}]
        return []

    async def _control(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if method == "AccountCreate":
            if not self.allow_password_accounts:
                return web.json_response({"error": "password based account creation is disabled"}, status=503)
            node = str(body.get("nodeName", "")).lower()
            if not node or len(node) > 100:
                return web.json_response({"error": "bad nodeName"}, status=400)
            if node in self.accounts:
                return web.json_response({"error": "nodeName already exists"}, status=409)
            pw = _alnum()
            self.accounts[node] = Account("password", "ENABLED" if self.auto_approve else "PENDING", pw)
            return web.json_response({"nodeName": node, "password": pw, "userName": node})
        user, acct = self._account(request, activating=method == "AccountActivate")
        self.calls.append((request.path, user))
        if method == "AccountActivate":
            acct.activations += 1
            acct.description = str(body.get("description", ""))
            return web.json_response({"accountState": acct.state, "version": "2.0.0.13"})
        if acct.state != "ENABLED":
            raise web.HTTPForbidden(text=f"account is {acct.state}")
        if method == "ServiceLookup":
            name = str(body.get("name", ""))
            services = [] if name in self.withdrawn else self._services(name)
            random.shuffle(services)  # ISE randomises the order across nodes
            return web.json_response({"services": services})
        if method == "AccessSecret":
            peer = str(body.get("peerNodeName", ""))
            if peer not in {MNT, PUBSUB, ADMIN, DEAD_MNT}:
                return web.json_response({"error": f"unknown peer {peer}"}, status=400)
            secret = self.secrets.setdefault((user, peer), _alnum())
            return web.json_response({"secret": secret})
        return web.json_response({"error": f"unknown method {method}"}, status=404)

    # -- data plane REST ------------------------------------------------------------------------------------
    async def _session_rest(self, request: web.Request) -> web.Response:
        self._data_auth(request, MNT)
        op = request.match_info["op"]
        body = await request.json()
        self.rest_bodies.append((op, body))
        start = _ts_ms(body["startTimestamp"]) if body.get("startTimestamp") else None
        end = _ts_ms(body["endTimestamp"]) if body.get("endTimestamp") else None
        if op == "getSessions" or (op == "getSessionsForRecovery" and self.recovery_supported):
            if op == "getSessionsForRecovery" and start is None:
                return web.json_response({"error": "startTimestamp is required"}, status=400)
            out = [
                s
                for s in self.sessions.values()
                if (start is None or _ts_ms(s["timestamp"]) >= start) and (end is None or _ts_ms(s["timestamp"]) <= end)
            ]
            return web.Response(body=json.dumps({"sessions": out}).encode(), content_type="application/json")
        if op == "getSessionByMacAddress":
            found = self.sessions.get(str(body.get("macAddress", "")).upper())
            return web.json_response(found) if found else web.Response(status=204)
        if op == "getUserGroups":
            groups = [{"userName": u, "groups": g} for u, g in self.user_groups.items()]
            return web.json_response({"userGroups": groups})
        return web.json_response({"error": f"unknown operation {op}"}, status=404)

    async def _trustsec_rest(self, request: web.Request) -> web.Response:
        self._data_auth(request, ADMIN)
        op = request.match_info["op"]
        if op == "getSecurityGroups":
            return web.json_response({"securityGroups": self.security_groups})
        if op == "getSecurityGroupAcls":
            return web.json_response({"securityGroupAcls": self.sgacls})
        return web.json_response({"error": f"unknown operation {op}"}, status=404)

    # -- test hooks ----------------------------------------------------------------------------------------
    def set_account_state(self, node: str, state: str) -> None:
        self.accounts[node.lower()].state = state

    def add_sessions(self, sessions: list[dict[str, Any]]) -> None:
        """Sessions that exist before any client connects (what the bulk download must return)."""
        for s in sessions:
            self.sessions[s["macAddress"]] = s
            self.published.append(s)
