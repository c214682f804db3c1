"""A batch's data records of one template, decoded together with one ``np.frombuffer``.

Records arrive two ways: as byte slices from the sequential set walk (with header facts kept
as runs), and as gathered numpy chunks from the vectorised walk (with per-set facts).
"""

from __future__ import annotations

import numpy as np

from clarion_edge.netflow.fields import Context, Plan
from clarion_edge.netflow.state import Domain, Template

#: Records converted per slice: small enough for the output columns to stay in cache.
SLICE = 8192
#: The sampling factors of a batch that needs none (every slice of it is empty).
_NO_FACTOR = np.ones(0, dtype=np.uint64)


def bump(stats: dict[str, int], reason: str, n: int = 1) -> None:
    stats[reason] = stats.get(reason, 0) + n


class Group:
    """Data records of one template gathered across a batch of datagrams, decoded in one go.

    Header facts change per datagram, not per set, so they are kept as runs: (first record,
    export ms, uptime ms, sampling) appended only when the datagram's context object changes.
    """

    __slots__ = ("bufs", "chunks", "ctx", "domain", "plan", "runs", "stats", "template", "total")

    def __init__(self, plan: Plan, domain: Domain, template: Template | None, stats: dict[str, int]) -> None:
        self.plan = plan
        self.domain = domain
        self.template = template  # held so its id() stays unique while the batch lives
        self.stats = stats
        self.bufs: list[bytes] = []
        self.runs: list[tuple[int, int, int, int]] = []
        self.ctx: tuple[int, int, int] | None = None
        self.total = 0
        #: From the vectorised walk: (records of ``plan.dtype``, records per set, export ms per set, uptime ms per set,
        #: sampling).
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = []

    def add(self, buf: bytes, count: int, ctx: tuple[int, int, int]) -> None:
        if ctx is not self.ctx:
            self.runs.append((self.total, *ctx))
            self.ctx = ctx
        self.bufs.append(buf)
        self.total += count

    def size(self) -> int:
        """Records queued so far (the length of the slice :meth:`decode` fills)."""
        return self.total + sum(len(chunk[0]) for chunk in self.chunks)

    def decode(self, out: np.ndarray) -> None:
        """Convert every queued record into ``out`` (zeroed ``FLOW_DTYPE`` of length :meth:`size`)."""
        raw: list[np.ndarray] = []
        export: list[np.ndarray] = []
        uptime: list[np.ndarray] = []
        factor: list[np.ndarray] = []
        samplings = {r[3] for r in self.runs} | {chunk[4] for chunk in self.chunks}
        unsampled = samplings == {1}
        plan = self.plan
        # The per-record factor is read only for sampled records or templates that carry their own sampler.
        need_factor = not unsampled or plan.sampler_col is not None or plan.inline_sampling is not None
        unknown = 0  # records whose header uptime is unknown (IPFIX before systemInitTime), counted per set
        if self.bufs:
            n = self.total
            raw.append(np.frombuffer(self.bufs[0] if len(self.bufs) == 1 else b"".join(self.bufs), dtype=plan.dtype))
            runs = np.array(self.runs, dtype=np.int64)
            counts = np.diff(runs[:, 0], append=n)
            export.append(np.repeat(runs[:, 1], counts))
            uptime.append(np.repeat(runs[:, 2], counts))
            unknown += int(counts[runs[:, 2] < 0].sum())
            if need_factor:
                factor.append(np.repeat(runs[:, 3], counts).astype(np.uint64))
        for recs, counts, export_ms, uptime_ms, sampling in self.chunks:
            raw.append(recs)
            export.append(np.repeat(export_ms, counts))
            uptime.append(np.repeat(uptime_ms, counts))
            unknown += int(counts[uptime_ms < 0].sum())
            if need_factor:
                factor.append(np.full(len(recs), sampling, dtype=np.uint64))
        rec = _join(raw)
        ctx_export, ctx_uptime = _join(export), _join(uptime)
        ctx_factor = _join(factor) if need_factor else _NO_FACTOR
        n = len(rec)
        if unknown and self.template is not None and self.template.sysuptime:
            bump(self.stats, "no_system_init_time", unknown)
        # Slices small enough to stay in cache: the output is written one column at a time.
        for lo in range(0, n, SLICE):
            hi = lo + SLICE
            ctx = Context(ctx_export[lo:hi], ctx_uptime[lo:hi], ctx_factor[lo:hi], self.domain.samplers, unsampled)
            self.plan.convert(rec[lo:hi], ctx, out[lo:hi])


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    dtype = parts[0].dtype
    if dtype.names is None:
        return np.concatenate(parts)
    return join_records(parts)


def join_records(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate structured arrays as opaque items: numpy copies structured items field by field."""
    dtype = parts[0].dtype
    opaque = np.dtype((np.void, dtype.itemsize))
    joined: np.ndarray = np.concatenate([np.ascontiguousarray(p).view(opaque) for p in parts]).view(dtype)
    return joined
