"""POST one EdgeGraph to the Clarion server, retrying only what a retry can fix.

Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and full
jitter (AWS architecture blog, "Exponential Backoff And Jitter"), honouring Retry-After.
409/422/400/413 say the batch itself is wrong: retrying cannot help, so the caller moves it
aside (``rejected``). 401/403 and other 4xx say the agent is misconfigured (token, URL): the
batch is fine and must be kept (``refused``). The token is never logged.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import msgspec

from clarion_edge import __version__, wire

log = logging.getLogger(__name__)

GRAPHS_PATH = "/api/v1/graphs"
Outcome = Literal["applied", "duplicate", "rejected", "refused", "unavailable"]
REJECT_STATUSES = frozenset({400, 409, 413, 422})
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class SendResult:
    """What became of one batch: ``acked`` means the server holds it and the spool may forget it."""

    outcome: Outcome
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    attempts: int = 0

    @property
    def acked(self) -> bool:
        return self.outcome in ("applied", "duplicate")

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "status": self.status,
            "body": self.body,
            "error": self.error,
            "attempts": self.attempts,
        }


def backoff_delays(base: float, cap: float, rng: random.Random | None = None) -> Iterator[float]:
    """Full jitter: the n-th delay is uniform in [0, min(cap, base * 2**n)]."""
    r = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    n = 0
    while True:
        yield r.uniform(0.0, min(cap, base * (2**n)))
        n = min(n + 1, 62)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Sender:
    """Thread-safe synchronous client for ``POST /api/v1/graphs``; one per agent process."""

    def __init__(
        self,
        server_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_after: float = 300.0,
        verify: bool | str = True,  # or the path of a CA bundle
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {server_url!r}")
        if not token:
            raise ValueError("an agent token is required (--token or CLARION_EDGE_TOKEN)")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.url = server_url.rstrip("/") + GRAPHS_PATH
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._rng = rng
        self._stop = threading.Event()
        self._sleep = sleep or self._interruptible_sleep
        if verify is False:
            log.warning("TLS certificate verification is OFF for %s: use it only in a lab", self.url)
        self._client = httpx.Client(
            timeout=timeout,
            verify=ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "User-Agent": f"clarion-edge/{__version__}",
            },
        )

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def stop(self) -> None:
        """Cut short any backoff wait (shutdown): the pending send returns ``unavailable``."""
        self._stop.set()

    def _interruptible_sleep(self, seconds: float) -> bool:
        """Sleep; return False if :meth:`stop` was called meanwhile."""
        return not self._stop.wait(seconds)

    def send(self, graph: wire.EdgeGraph) -> SendResult:
        """Seal (if needed) and send one batch."""
        if graph.digest is None:
            graph = graph.sealed()
        return self.send_bytes(wire.encode(graph))

    def send_bytes(self, body: bytes, *, label: str = "") -> SendResult:
        """Send an already encoded, sealed EdgeGraph; retry transient failures."""
        delays = backoff_delays(self.backoff_base, self.backoff_max, self._rng)
        attempt = 0
        while True:
            attempt += 1
            result, retry_after = self._attempt(body, attempt)
            if result.outcome != "unavailable":
                return result
            if attempt > self.retries or self._stop.is_set():
                return result
            delay = next(delays)
            if retry_after is not None:
                delay = min(retry_after, self.max_retry_after)
            log.warning(
                "send %s failed (attempt %d/%d: %s); retrying in %.2f s",
                label or "batch", attempt, self.retries + 1, result.error, delay,
            )  # fmt: skip
            if not self._sleep(delay):
                return result

    def _attempt(self, body: bytes, attempt: int) -> tuple[SendResult, float | None]:
        try:
            resp = self._client.post(self.url, content=body)
        except httpx.TimeoutException as exc:
            return SendResult("unavailable", None, {}, f"timeout: {exc!r}", attempt), None
        except httpx.TransportError as exc:
            return SendResult("unavailable", None, {}, f"connection error: {exc!r}", attempt), None
        status = resp.status_code
        payload = _json_object(resp)
        if 200 <= status < 300:
            if "duplicate" not in payload and "applied" not in payload:
                return SendResult(
                    "refused", status, payload, f"HTTP {status} without an EdgeGraph acknowledgement: is {self.url} a "
                    "Clarion server?", attempt,
                ), None  # fmt: skip
            outcome: Outcome = "duplicate" if payload.get("duplicate") else "applied"
            return SendResult(outcome, status, payload, "", attempt), None
        reason = _reason(resp, payload)
        if status in RETRY_STATUSES or status >= 500:
            return SendResult("unavailable", status, payload, reason, attempt), parse_retry_after(
                resp.headers.get("Retry-After")
            )
        if status in REJECT_STATUSES:
            return SendResult("rejected", status, payload, reason, attempt), None
        return SendResult("refused", status, payload, reason, attempt), None


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(resp.content)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _reason(resp: httpx.Response, payload: dict[str, Any]) -> str:
    detail = payload.get("detail")
    if detail is not None:
        return f"HTTP {resp.status_code}: {msgspec.json.encode(detail).decode()}"
    text = resp.text.strip().replace("\n", " ")
    return f"HTTP {resp.status_code}: {text[:300]}" if text else f"HTTP {resp.status_code}"
