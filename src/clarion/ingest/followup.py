"""After batches are applied: their IP→MAC bindings and the correlation of IP-only endpoints, coalesced.

Recording every window's bindings inside the request would add about half to the cost of a batch
(each device's IP re-confirmed every window). Instead a background thread collects what batches
saw and, every few seconds, writes one binding per run of consecutive windows in which an IP was
held by the same MAC, then correlates the IP-only endpoints those batches created. Both steps are
idempotent; a crash before a flush only delays bindings until the next window shows them again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clarion.store.port import GraphStore
from clarion_edge import wire

log = logging.getLogger(__name__)


@dataclass
class FollowUpStats:
    batches: int = 0
    flushes: int = 0
    bindings_written: int = 0
    endpoints_moved: int = 0
    failures: int = 0
    last_error: str | None = None


@dataclass
class _Pending:
    observations: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)  # ip -> (from, until, mac)
    ip_endpoints: set[str] = field(default_factory=set)


def coalesce(observations: dict[str, list[tuple[int, int, str]]]) -> list[list[Any]]:
    """One binding row ``[ip, mac, from, until, "agent"]`` per run of consecutive same-MAC windows."""
    rows: list[list[Any]] = []
    for ip in sorted(observations):
        runs: list[list[Any]] = []
        for lo, hi, mac in sorted(observations[ip]):
            if runs and runs[-1][1] == mac and lo <= runs[-1][3]:
                runs[-1][3] = max(runs[-1][3], hi)  # the next window of the same holder
            else:
                runs.append([ip, mac, lo, hi, "agent"])  # another holder, or a gap in which it was unseen
        rows.extend(runs)
    return rows


class IdentityFollowUp:
    """Collects applied batches; a thread flushes bindings and correlation every ``interval_s``."""

    def __init__(
        self,
        store: GraphStore,
        *,
        interval_s: float = 2.0,
        max_observations: int = 200_000,
        on_flush: Callable[[FollowUpStats], None] | None = None,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.max_observations = max_observations
        self.stats = FollowUpStats()
        self._on_flush = on_flush
        self._pending = _Pending()
        self._count = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="clarion-identity-followup", daemon=True)
        self._thread.start()

    def submit(self, graph: wire.EdgeGraph) -> None:
        """Note what an applied batch saw (cheap: no store access)."""
        from clarion.identity.bindings import bindings_from_graph

        rows = bindings_from_graph(graph)
        local_ips = {n.ip for n in graph.nodes if isinstance(n, wire.IpEndpoint) and n.local}
        with self._lock:
            for ip, mac, lo, hi, _ in rows:
                self._pending.observations.setdefault(ip, []).append((lo, hi, mac))
            self._pending.ip_endpoints |= local_ips
            self._count += len(rows)
            self.stats.batches += 1
            full = self._count >= self.max_observations
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write what is pending now (also used by tests and at shutdown)."""
        from clarion.identity.bindings import _EMPTY
        from clarion.identity.correlate import correlate
        from clarion.identity.sessions import STATEMENT

        with self._flush_lock:
            with self._lock:
                pending, self._pending, self._count = self._pending, _Pending(), 0
            if not pending.observations and not pending.ip_endpoints:
                return
            try:
                rows = coalesce(pending.observations)
                for i in range(0, len(rows), 5_000):
                    self.store.write(STATEMENT, {**_EMPTY, "bindings": rows[i : i + 5_000]})
                result = correlate(self.store, pending.ip_endpoints | set(pending.observations))
                self.stats.bindings_written += len(rows)
                self.stats.endpoints_moved += result.moved
            except Exception as e:
                self.stats.failures += 1
                self.stats.last_error = f"{type(e).__name__}: {e}"
                log.exception("identity follow-up of applied batches failed (bindings will be re-observed)")
            self.stats.flushes += 1
        if self._on_flush is not None:
            self._on_flush(self.stats)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.flush()
