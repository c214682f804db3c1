"""The fake pxGrid's pubsub node: WebSocket upgrade with Basic nodeName:secret, binary STOMP 1.2 frames,
subscriptions with or without CONNECT, RECEIPTs, and the hooks tests use to publish, break sequences and drop links."""

from __future__ import annotations

import json
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.pxgrid import frames

SESSION_TOPIC = "/topic/com.cisco.ise.session"
SESSION_TOPIC_ALL = "/topic/com.cisco.ise.session.all"
GROUP_TOPIC = "/topic/com.cisco.ise.session.group"
SG_TOPIC = "/topic/com.cisco.ise.config.trustsec.security.group"
SGACL_TOPIC = "/topic/com.cisco.ise.config.trustsec.security.group.acl"
PUBSUB = "~ise-pubsub-fake1"


@dataclass
class Subscriber:
    ws: web.WebSocketResponse
    request: web.Request
    subs: dict[str, str] = field(default_factory=dict)  # subscription id -> destination


class PubSubNode:
    """Mixed into ``FakePxGrid``; relies on its loop, session store, auth and ``_run``."""

    subscribers: list[Subscriber]
    sessions: dict[str, dict[str, Any]]
    published: list[dict[str, Any]]
    security_groups: list[dict[str, Any]]
    seq: dict[str, int]
    ws_available: bool
    topic_all: bool
    answer_pings: bool
    ws_connects: int
    connect_headers: list[dict[str, str]]

    def _data_auth(self, request: web.Request, peer: str) -> str:
        raise NotImplementedError

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        raise NotImplementedError

    # -- pubsub ---------------------------------------------------------------------------------------------
    async def _pubsub(self, request: web.Request) -> web.StreamResponse:
        if not self.ws_available:
            return web.Response(status=503, text="pubsub unavailable")
        self._data_auth(request, PUBSUB)
        ws = web.WebSocketResponse(heartbeat=20.0, autoping=self.answer_pings)
        await ws.prepare(request)
        self.ws_connects += 1
        sub = Subscriber(ws, request)
        self.subscribers.append(sub)
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                try:
                    frame = frames.parse(data)
                except ValueError as exc:
                    await ws.send_bytes(frames.build("ERROR", {"message": f"bad frame {exc}"}))
                    break
                if frame is None:
                    continue
                command, headers, _body = frame
                if command in ("CONNECT", "STOMP"):
                    self.connect_headers.append(headers)
                    await ws.send_bytes(frames.build("CONNECTED", {"version": "1.2"}))
                elif command == "SUBSCRIBE":  # accepted with or without a CONNECT first, like ISE
                    sub.subs[headers.get("id", "")] = headers["destination"]
                elif command == "UNSUBSCRIBE":
                    sub.subs.pop(headers.get("id", ""), None)
                elif command == "DISCONNECT":
                    if "receipt" in headers:
                        await ws.send_bytes(frames.build("RECEIPT", {"receipt-id": headers["receipt"]}))
                    break
                elif command != "SEND":
                    await ws.send_bytes(frames.build("ERROR", {"message": f"unsupported command {command}"}))
                    break
                if "receipt" in headers and command != "DISCONNECT":
                    await ws.send_bytes(frames.build("RECEIPT", {"receipt-id": headers["receipt"]}))
        finally:
            if sub in self.subscribers:
                self.subscribers.remove(sub)
        return ws

    async def _send(self, topic: str, body: bytes) -> int:
        sent = 0
        for sub in list(self.subscribers):
            for sub_id, dest in sub.subs.items():
                if dest != topic:
                    continue
                headers = {
                    "destination": topic,
                    "message-id": str(random.getrandbits(48)),
                    "subscription": sub_id,
                    "content-length": str(len(body)),
                }
                try:
                    await sub.ws.send_bytes(frames.build("MESSAGE", headers, body))
                    sent += 1
                except ConnectionError:
                    pass
        return sent

    def _next_seq(self, topic: str) -> int:
        n = self.seq.get(topic, 0)
        self.seq[topic] = n + 1
        return n

    async def _publish(self, sessions: list[dict[str, Any]], sequence: bool = True) -> int:
        """sessionTopic carries only sessions with an IP address; sessionTopicAll (ISE 3.3p2+) carries all."""
        sent = 0
        routes = [(SESSION_TOPIC, [s for s in sessions if s.get("ipAddresses")])]
        if self.topic_all:
            routes.append((SESSION_TOPIC_ALL, sessions))
        for topic, items in routes:
            if not items:
                continue
            doc: dict[str, Any] = {"sessions": items}
            if sequence:
                doc = {"sequence": self._next_seq(topic), **doc}
            sent += await self._send(topic, json.dumps(doc).encode())
        return sent

    def publish_sessions(self, sessions: list[dict[str, Any]], *, sequence: bool = True) -> int:
        """Update the directory and publish one batched message; returns the receivers it reached."""

        async def go() -> int:
            for s in sessions:
                self.sessions[s["macAddress"]] = s
                self.published.append(s)
            return await self._publish(sessions, sequence)

        result: int = self._run(go())
        return result

    def publish_batches(self, batches: list[list[dict[str, Any]]]) -> int:
        """Publish many messages in one go (benchmarks): one coroutine, no per-message thread hop."""

        async def go() -> int:
            sent = 0
            for sessions in batches:
                for s in sessions:
                    self.sessions[s["macAddress"]] = s
                sent += await self._publish(sessions)
            return sent

        result: int = self._run(go())
        return result

    def publish_raw(self, topic: str, body: bytes) -> int:
        result: int = self._run(self._send(topic, body))
        return result

    def publish_security_group(self, operation: str, group: dict[str, Any]) -> int:
        async def go() -> int:
            if operation == "DELETE":
                self.security_groups = [g for g in self.security_groups if g["name"] != group["name"]]
            else:
                self.security_groups = [g for g in self.security_groups if g["name"] != group["name"]] + [group]
            doc = {"operation": operation, "securityGroup": group, "sequence": self._next_seq(SG_TOPIC)}
            return await self._send(SG_TOPIC, json.dumps(doc).encode())

        result: int = self._run(go())
        return result

    def jump_sequence(self, by: int) -> None:
        for topic in (SESSION_TOPIC, SESSION_TOPIC_ALL):
            self.seq[topic] = self.seq.get(topic, 0) + by

    def reset_sequence(self) -> None:
        for topic in (SESSION_TOPIC, SESSION_TOPIC_ALL):
            self.seq[topic] = 0

    def drop_connections(self, abrupt: bool = True) -> int:
        """Cut every WebSocket: ``abrupt`` aborts TCP (like a node crash), else a 1001 close."""

        async def go() -> int:
            subs = list(self.subscribers)
            for sub in subs:
                if abrupt and sub.request.transport is not None:
                    sub.request.transport.abort()
                else:
                    await sub.ws.close(code=1001, message=b"going away")
            self.subscribers.clear()
            return len(subs)

        result: int = self._run(go())
        return result

    def subscribed(self, topic: str = SESSION_TOPIC) -> int:
        return sum(1 for sub in list(self.subscribers) if topic in sub.subs.values())

    def send_frame(self, command: str, headers: dict[str, str], body: bytes = b"") -> int:
        """Send any frame (e.g. ERROR) to every connected client."""

        async def go() -> int:
            for sub in list(self.subscribers):
                await sub.ws.send_bytes(frames.build(command, headers, body))
            return len(self.subscribers)

        result: int = self._run(go())
        return result
