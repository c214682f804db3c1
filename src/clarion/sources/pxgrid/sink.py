"""Where converted sessions go: the ``SessionSink`` protocol, an in-memory sink, and a sink that POSTs to the
Clarion server's ``/api/v1/identity``.

The pxGrid service holds ISE's certificates and nothing else; the graph merger behind the sink decides what a
DISCONNECTED session or an older timestamp means for the graph.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import httpx
import msgspec

from clarion.sources.model import SecurityGroup, Session, Sgacl
from clarion.sources.pxgrid.errors import SinkError

log = logging.getLogger(__name__)

#: The API's default row limit per request (``max_nodes``); a bigger batch would only be refused with 413.
MAX_BATCH = 100_000
MAX_WINDOW = 8
#: A stream flush holds up to this many ``batch`` (the consumer joins queued messages up to it) and goes as
#: requests of ``batch``; a bigger call is a backfill, sent as requests of ``bulk_batch`` (decision 0013).
STREAM_JOIN = 4


@runtime_checkable
class SessionSink(Protocol):
    """Receives batches of sessions; must be idempotent (a backfill can repeat what the stream delivered)."""

    def apply(self, sessions: list[Session]) -> None: ...


@runtime_checkable
class TrustSecSink(Protocol):
    """Optional: a sink that also wants TrustSec security groups and SGACLs learnt from pxGrid."""

    def apply_security_groups(self, groups: list[SecurityGroup], deleted: list[SecurityGroup]) -> None: ...

    def apply_sgacls(self, acls: list[Sgacl], deleted: list[str]) -> None: ...


def session_to_json(session: Session) -> dict[str, Any]:
    """A Session as a JSON object with the model's field names (tuples become arrays)."""
    out: dict[str, Any] = msgspec.to_builtins(session)
    out["ips"] = list(session.ips)
    out["ad_groups"] = list(session.ad_groups)
    return out


#: Encodes the model's dataclasses directly (field names as keys, tuples as arrays): what ``session_to_json``
#: gives, without building the dicts (``dataclasses.asdict`` cost more than the server's merge per session).
_ENCODER = msgspec.json.Encoder()


class MemorySink:
    """Keeps the newest session per MAC (ties go to the later arrival) and every batch, for tests and benchmarks."""

    def __init__(self, keep_batches: bool = True) -> None:
        self.latest: dict[str, Session] = {}
        self.batches: list[list[Session]] = []
        self.applied = 0
        self.security_groups: dict[int, SecurityGroup] = {}
        self.sgacls: dict[str, Sgacl] = {}
        self._keep = keep_batches
        self._lock = threading.Lock()

    def apply(self, sessions: list[Session]) -> None:
        with self._lock:
            if self._keep:
                self.batches.append(list(sessions))
            self.applied += len(sessions)
            for s in sessions:
                old = self.latest.get(s.mac)
                if old is None or s.timestamp_ms >= old.timestamp_ms:
                    self.latest[s.mac] = s

    def apply_security_groups(self, groups: list[SecurityGroup], deleted: list[SecurityGroup]) -> None:
        with self._lock:
            for g in groups:
                self.security_groups[g.value] = g
            for g in deleted:
                self.security_groups.pop(g.value, None)

    def apply_sgacls(self, acls: list[Sgacl], deleted: list[str]) -> None:
        with self._lock:
            for a in acls:
                self.sgacls[a.name] = a
            for name in deleted:
                self.sgacls.pop(name, None)

    def snapshot(self) -> dict[str, Session]:
        with self._lock:
            return dict(self.latest)


class HttpSink:
    """POSTs to ``{server}/api/v1/identity`` with a bearer token: ``{"sessions": [...]}``, and the TrustSec objects
    pxGrid teaches (``security_groups``, ``sgacls``, ``deleted_sgacls``, ``deleted_security_groups``).

    Connection errors, 429 and 5xx are retried with jittered backoff (``attempts`` times), then ``SinkError``.
    A 422 or 413 on a batch is bisected so one session the server refuses is dropped (counted in ``rejected``,
    logged with the server's reason) instead of blocking the stream forever; 401/403 raise ``SinkError`` at once.

    ``apply`` sends ``batch`` sessions per request (``bulk_batch``, if set, when it is handed more than
    ``STREAM_JOIN`` requests' worth at once, as the pxGrid consumer does with a backfill) with up to ``window``
    requests in flight, in stream order, so the server merges one while the next is serialised and sent
    (decision 0013); the server keeps the newest
    event per device by its own timestamp, so two batches merged out of order give the same graph. ``apply``
    still returns only once every request of the call succeeded, and raises (after the requests in flight have
    ended) if one failed: the caller's watermark and backfill see exactly what they did with one at a time.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        client: httpx.Client | None = None,
        batch: int = 1000,
        bulk_batch: int | None = None,
        window: int = 2,
        attempts: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
    ) -> None:
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"server {server!r}: give a base URL such as https://clarion.corp.local:8000")
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch {batch}: give 1..{MAX_BATCH} sessions per request (the API's row limit)")
        if bulk_batch is not None and not batch <= bulk_batch <= MAX_BATCH:
            raise ValueError(
                f"bulk_batch {bulk_batch}: give {batch}..{MAX_BATCH} (at least batch) sessions per request"
            )
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window {window}: give 1..{MAX_WINDOW} requests in flight")
        self.url = server.rstrip("/") + "/api/v1/identity"
        self.client = client or httpx.Client(timeout=timeout_s)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.batch = batch
        #: None: every request holds ``batch`` (``clarion import sessions --batch``); the pxGrid service sets it.
        self.bulk_batch = bulk_batch
        self.window = window
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.rejected = 0
        self._rejected_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def apply(self, sessions: list[Session]) -> None:
        stream = len(sessions) <= self.batch * STREAM_JOIN  # a joined stream flush: requests of batch, in flight
        size = self.batch if stream else (self.bulk_batch or self.batch)
        parts = [sessions[i : i + size] for i in range(0, len(sessions), size)]
        if self.window == 1 or len(parts) <= 1:
            for part in parts:
                self._post_bisecting("sessions", part)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.window, thread_name_prefix="clarion-sink")
        flying: deque[Future[None]] = deque()
        error: BaseException | None = None
        for part in parts:
            if len(flying) >= self.window:
                error = _outcome(flying.popleft())
                if error is not None:
                    break  # nothing after a failed request is sent: the caller re-sends the call from its mark
            flying.append(self._pool.submit(self._post_bisecting, "sessions", part))
        for f in flying:  # the requests in flight end (merged or failed) before the caller hears of it
            error = error or _outcome(f)
        if error is not None:
            raise error

    def apply_security_groups(self, groups: list[SecurityGroup], deleted: list[SecurityGroup]) -> None:
        if groups:
            self._post_bisecting("security_groups", groups)
        if deleted:  # by value: the server retires a tag devices still carry, removes it otherwise
            self._post({"deleted_security_groups": sorted({g.value for g in deleted})})

    def apply_sgacls(self, acls: list[Sgacl], deleted: list[str]) -> None:
        if acls:
            self._post_bisecting("sgacls", acls)
        if deleted:
            self._post({"deleted_sgacls": deleted})

    def _post_bisecting(self, key: str, rows: Sequence[Any]) -> None:
        try:
            self._post({key: rows})
        except _Refused as exc:
            if len(rows) == 1:
                with self._rejected_lock:
                    self.rejected += 1
                log.error("the Clarion server refused one of %s and it is dropped: %s; row: %.300r", key, exc, rows[0])
                return
            mid = len(rows) // 2
            self._post_bisecting(key, rows[:mid])
            self._post_bisecting(key, rows[mid:])

    def _post(self, body: dict[str, Any]) -> None:
        content = _ENCODER.encode(body)
        problem = ""
        for attempt in range(self.attempts):
            try:
                resp = self.client.post(self.url, content=content, headers=self.headers)
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.url}: {exc}"
            else:
                if resp.status_code < 300:
                    return
                if resp.status_code in (413, 422):
                    raise _Refused(f"HTTP {resp.status_code} {resp.text[:300]!r}")
                if resp.status_code < 500 and resp.status_code != 429:
                    raise SinkError(f"{self.url} refused the request: HTTP {resp.status_code} {resp.text[:300]!r}")
                problem = f"{self.url}: HTTP {resp.status_code}"
            time.sleep(random.uniform(0, self.backoff_s * 2**attempt))  # noqa: S311 - jitter, not crypto
        raise SinkError(f"{problem} (gave up after {self.attempts} attempts)")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.client.close()


def _outcome(f: Future[None]) -> BaseException | None:
    """The request's error once it ended, or None when it succeeded."""
    return f.exception()


class _Refused(SinkError):  # noqa: N818 - internal signal for bisection
    """The server judged a body invalid (422) or too large (413)."""
