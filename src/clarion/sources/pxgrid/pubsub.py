"""The WebSocket leg of pxGrid: STOMP 1.2 over binary WebSocket messages to the pubsub node.

The only module that imports ``websocket`` (websocket-client). It authenticates the upgrade with Basic
``nodeName:<secret for the pubsub node>`` (plus the client certificate), pings to keep NATs and ISE's idle timers happy,
and declares the link dead when nothing (data or pong) arrives for ``read_timeout_s``.
"""

from __future__ import annotations

import logging
import select
import ssl
import time

import websocket

from clarion.sources.pxgrid import stomp
from clarion.sources.pxgrid.errors import PxGridAuthError, PxGridError, StompError
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.transport import basic_auth, explain_transport_error

log = logging.getLogger(__name__)


class ConnectionLost(PxGridError):  # noqa: N818 - an event the consumer reacts to by reconnecting
    """The WebSocket closed, timed out or failed; the consumer reconnects and backfills."""


class MalformedFrame(PxGridError):  # noqa: N818
    """One WebSocket message was not a STOMP frame; counted and skipped."""


class PubSubConnection:
    """One STOMP session on one pubsub node."""

    def __init__(
        self, settings: PxGridSettings, ctx: ssl.SSLContext, ws_url: str, pubsub_node: str, secret: str
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.ws_url = ws_url
        self.pubsub_node = pubsub_node
        self.secret = secret
        self.ws: websocket.WebSocket | None = None
        self._last_rx = 0.0
        self._last_ping = 0.0
        self.pending: list[stomp.Frame] = []

    def open(self) -> None:
        """Upgrade, send CONNECT (host = pubsub nodeName) and wait for CONNECTED."""
        ws = websocket.WebSocket(
            sslopt={"context": self.ctx, "check_hostname": self.settings.verify_hostname},
            skip_utf8_validation=True,
        )
        auth = basic_auth(self.settings.node_name, self.secret)
        try:
            ws.connect(  # type: ignore[no-untyped-call]
                self.ws_url, header=[f"Authorization: {auth}"], timeout=self.settings.http_timeout_s
            )
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):
                raise PxGridAuthError(
                    f"{self.ws_url}: the pubsub node refused the WebSocket upgrade ({exc.status_code}) for nodeName "
                    f"{self.settings.node_name!r}; the access secret for {self.pubsub_node} may be stale"
                ) from exc
            raise ConnectionLost(f"{self.ws_url}: WebSocket upgrade failed: HTTP {exc.status_code}") from exc
        except (OSError, websocket.WebSocketException) as exc:
            err = explain_transport_error(exc, self.ws_url, self.settings)
            raise (err if isinstance(err, PxGridAuthError) else ConnectionLost(str(err))) from exc
        ws.settimeout(self.settings.read_timeout_s)
        self.ws = ws
        self._last_rx = self._last_ping = time.monotonic()
        self.send("CONNECT", {"accept-version": "1.2", "host": self.pubsub_node})
        deadline = time.monotonic() + self.settings.http_timeout_s
        while time.monotonic() < deadline:
            frame = self.poll(0.2)
            if frame is None:
                continue
            if frame.command == "CONNECTED":
                return
            self.raise_if_error(frame)
        raise ConnectionLost(f"{self.ws_url}: no CONNECTED frame within {self.settings.http_timeout_s:.0f} s")

    def send(self, command: str, headers: dict[str, str], body: bytes = b"") -> None:
        if self.ws is None:
            raise ConnectionLost("the WebSocket is not open")
        try:
            self.ws.send_binary(stomp.encode(command, headers, body))
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"{self.ws_url}: send failed: {exc}") from exc

    def subscribe(self, destination: str, sub_id: str, receipt: str | None = None) -> None:
        headers = {"destination": destination, "id": sub_id}
        if receipt:
            headers["receipt"] = receipt
        self.send("SUBSCRIBE", headers)

    def wait_receipt(self, receipt: str, timeout: float) -> bool:
        """Wait for RECEIPT ``receipt``; MESSAGE frames that arrive meanwhile are kept in ``pending``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = self.poll(min(0.2, max(deadline - time.monotonic(), 0.01)))
            except MalformedFrame as exc:
                log.warning("skipping a malformed frame while waiting for a receipt: %s", exc)
                continue
            if frame is None:
                continue
            if frame.command == "RECEIPT" and frame.headers.get("receipt-id") == receipt:
                return True
            self.raise_if_error(frame)
            self.pending.append(frame)
        return False

    @staticmethod
    def raise_if_error(frame: stomp.Frame) -> None:
        if frame.command == "ERROR":
            detail = frame.headers.get("message", "") + " " + frame.body[:300].decode("utf-8", "replace")
            raise StompError(f"pubsub sent STOMP ERROR: {detail.strip()}")

    def poll(self, tick: float) -> stomp.Frame | None:
        """Next STOMP frame, or None when ``tick`` passed without one (pings are sent and answered here)."""
        ws = self.ws
        if ws is None or ws.sock is None:
            raise ConnectionLost("the WebSocket is not open")
        now = time.monotonic()
        if now - self._last_rx > self.settings.read_timeout_s:
            raise ConnectionLost(f"{self.ws_url}: nothing received for {self.settings.read_timeout_s:.0f} s")
        try:
            if now - self._last_ping >= self.settings.ping_interval_s:
                ws.ping()
                self._last_ping = now
            sock = ws.sock
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                readable, _, _ = select.select([sock], [], [], tick)
                if not readable:
                    return None
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except (OSError, ValueError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"{self.ws_url}: {type(exc).__name__}: {exc}") from exc
        self._last_rx = time.monotonic()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionLost(f"{self.ws_url}: the pubsub node closed the WebSocket")
        if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
            return None
        data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode()
        if len(data) > self.settings.max_message_bytes:
            raise MalformedFrame(f"message of {len(data)} bytes exceeds max_message_bytes")
        try:
            return stomp.decode(data)
        except ValueError as exc:
            raise MalformedFrame(str(exc)) from exc

    def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is None:
            return
        try:
            if ws.connected:
                ws.send_binary(stomp.encode("DISCONNECT", {"receipt": "bye"}))
            ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            ws.shutdown()  # type: ignore[no-untyped-call]
