"""The decoder's table of exporters and their counters, with the bounds that keep it finite.

A hostile or misconfigured network can send from any number of addresses: exporters beyond
``max_exporters`` get no state, counters beyond four times that pool under ``OVERFLOW``, and a
periodic sweep expires templates and pending sets and forgets exporters that went quiet.
"""

from __future__ import annotations

from clarion_edge.netflow.group import bump
from clarion_edge.netflow.state import ExporterState

#: Counters of exporters beyond the stats limit (and of batch-wide errors) go under this name.
OVERFLOW = "*"
_SWEEP_EVERY_MS = 10_000


class ExporterTable:
    """Per-exporter state and counters; the base of ``Decoder``, which adds the decoding."""

    def __init__(self, *, template_ttl_ms: int, pending_ttl_ms: int, max_exporters: int) -> None:
        self._template_ttl_ms = template_ttl_ms
        self._pending_ttl_ms = pending_ttl_ms
        self._max_exporters = max_exporters
        self._exporters: dict[str, ExporterState] = {}
        self._stats: dict[str, dict[str, int]] = {}
        self._last_sweep_ms = -(10**18)
        #: Bytes of data sets waiting for templates, across all exporters.
        self._pending_bytes = 0

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per exporter and reason (a copy). Exporters beyond the limit count under "*"."""
        return {name: dict(counters) for name, counters in self._stats.items()}

    @property
    def template_count(self) -> int:
        """Templates held across all exporters (for monitoring and the memory-bound tests)."""
        return sum(len(e.templates) for e in self._exporters.values())

    @property
    def pending_count(self) -> int:
        """Data sets waiting for their template across all exporters."""
        return sum(len(e.pending) for e in self._exporters.values())

    def _exporter(self, name: str, now: int) -> ExporterState | None:
        if now - self._last_sweep_ms > _SWEEP_EVERY_MS:
            self._sweep(now)
        state = self._exporters.get(name)
        if state is None:
            if len(self._exporters) >= self._max_exporters:
                return None
            state = self._exporters[name] = ExporterState()
        state.last_seen_ms = now
        return state

    def _sweep(self, now: int) -> None:
        """Expire templates and pending sets everywhere; forget exporters that went quiet."""
        self._last_sweep_ms = now
        for name, state in list(self._exporters.items()):
            self._purge(state, now, self._stats_for(name))
            if not state.templates and not state.pending and now - state.last_seen_ms > self._template_ttl_ms:
                del self._exporters[name]

    def _purge(self, state: ExporterState, now: int, stats: dict[str, int]) -> None:
        before = state.pending_bytes
        expired, pending = state.purge(now, self._template_ttl_ms, self._pending_ttl_ms)
        self._pending_bytes -= before - state.pending_bytes
        if expired:
            bump(stats, "template_expired", expired)
        if pending:
            bump(stats, "pending_expired", pending)

    def _stats_for(self, exporter: str) -> dict[str, int]:
        stats = self._stats.get(exporter)
        if stats is None:
            if len(self._stats) >= 4 * self._max_exporters:
                exporter = OVERFLOW
                stats = self._stats.get(exporter)
            if stats is None:
                stats = self._stats[exporter] = {}
        return stats
