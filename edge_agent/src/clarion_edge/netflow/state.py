"""Per-exporter decoder state: templates, option facts (sampling, system init time), the pending buffer.

Everything here is bounded: templates per exporter, sampler ids per domain, pending data sets
per exporter, and (in the decoder) exporters, so a hostile sender cannot grow memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from clarion_edge.netflow.fields import (
    FIRST_SYSUP,
    LAST_SYSUP,
    SAMPLER_ID,
    SAMPLER_RANDOM_INTERVAL,
    SAMPLING_INTERVAL,
    SAMPLING_PACKET_INTERVAL,
    SAMPLING_PACKET_SPACE,
    SAMPLING_POPULATION,
    SAMPLING_SIZE,
    SELECTOR_ID,
    SYS_INIT_MS,
    Plan,
)

#: Sampler ids remembered per observation domain.
MAX_SAMPLERS = 1024
#: (version, observation domain) pairs remembered per exporter.
MAX_DOMAINS = 4096
_MAX_FACTOR = 0xFFFFFFFF
#: Beyond this a systemInitTimeMilliseconds is garbage (year ~6400), and would overflow int64 arithmetic.
_MAX_EPOCH_MS = 1 << 47


class _Epoch:
    """Counts changes that alter how a data set decodes (templates added, replaced or removed; sampling or
    system init time changed). The vectorised walk resolves templates once for a stretch of messages and
    must start over when this moves."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


EPOCH = _Epoch()

TemplateKey = tuple[int, int, int]  # (version, observation domain / source id, template id)


@dataclass(eq=False, slots=True)
class Domain:
    """What option records told us about one (version, observation domain) of an exporter."""

    sampling: int = 1
    samplers: dict[int, int] = field(default_factory=dict)
    init_ms: int = -1  # systemInitTimeMilliseconds, -1 until an option record says
    explicit_default: bool = False  # an option record without sampler id set ``sampling``
    #: (template, payload, records) of the last option data set applied cleanly: applying the same set again
    #: changes nothing, so the vectorised walk may skip it (exporters resend it with every template refresh).
    last_options: tuple[object, bytes, int] | None = None

    def apply_option(self, values: dict[tuple[int, int], int]) -> None:
        """Learn sampling and system init time from one option data record."""
        before = (self.sampling, self.init_ms, len(self.samplers))
        samplers = dict(self.samplers) if self.samplers else None
        self._apply(values)
        if (self.sampling, self.init_ms, len(self.samplers)) != before or (samplers and samplers != self.samplers):
            EPOCH.bump()

    def _apply(self, values: dict[tuple[int, int], int]) -> None:
        init = values.get((0, SYS_INIT_MS))
        if init and init < _MAX_EPOCH_MS:
            self.init_ms = init
        factor = values.get((0, SAMPLING_INTERVAL)) or values.get((0, SAMPLER_RANDOM_INTERVAL))
        if not factor:
            interval = values.get((0, SAMPLING_PACKET_INTERVAL))
            if interval:
                factor = round((interval + values.get((0, SAMPLING_PACKET_SPACE), 0)) / interval)
        if not factor:
            size, population = values.get((0, SAMPLING_SIZE)), values.get((0, SAMPLING_POPULATION))
            if size and population:
                factor = round(population / size)
        if not factor:
            return
        factor = max(1, min(factor, _MAX_FACTOR))
        sampler = values.get((0, SAMPLER_ID), values.get((0, SELECTOR_ID)))
        if sampler is None:
            self.sampling = factor
            self.explicit_default = True
            return
        if sampler in self.samplers or len(self.samplers) < MAX_SAMPLERS:
            self.samplers[sampler] = factor
        if not self.explicit_default:
            # One sampler only: records that do not name it were sampled by it too; with several, unknown.
            self.sampling = next(iter(self.samplers.values())) if len(self.samplers) == 1 else 1


@dataclass(eq=False, slots=True)
class Template:
    """A template as learned from one exporter; ``refreshed_ms`` drives expiry.

    ``fast`` templates (fixed-length data) take the bulk path; the others (options, variable
    length) are walked record by record.
    """

    plan: Plan
    options: bool
    refreshed_ms: int
    domain: Domain
    fast: bool = field(init=False)
    reclen: int = field(init=False)
    sysuptime: bool = field(init=False)
    #: The decoder's batch this template last queued records in, and the group it queued them to.
    batch: int = field(default=-1, init=False)
    group: object = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.fast = not self.options and not self.plan.varlen
        self.reclen = self.plan.reclen
        self.sysuptime = self.plan.has(FIRST_SYSUP) or self.plan.has(LAST_SYSUP)


@dataclass(slots=True)
class Pending:
    """A data set that arrived before its template, with the header facts needed to decode it later."""

    key: TemplateKey
    payload: bytes
    export_ms: int
    uptime_ms: int  # v9 header sysUpTime; -1 for IPFIX (derived from the domain's init time)
    received_ms: int


@dataclass(eq=False, slots=True)
class ExporterState:
    """All decoder state of one exporter."""

    templates: dict[TemplateKey, Template] = field(default_factory=dict)
    #: The same templates indexed (version, domain) -> template id, for the per-set lookup of the hot loop.
    by_domain: dict[tuple[int, int], dict[int, Template]] = field(default_factory=dict)
    domains: dict[tuple[int, int], Domain] = field(default_factory=dict)
    pending: deque[Pending] = field(default_factory=deque)
    pending_bytes: int = 0
    #: (version, domain, set id, set bytes) -> the templates that set defined, for cheap refreshes.
    template_sets: dict[tuple[int, int, int, bytes], list[tuple[TemplateKey, Template]]] = field(default_factory=dict)
    last_seen_ms: int = 0
    last_purge_ms: int = -(10**18)

    def domain(self, version: int, domain_id: int) -> Domain:
        """The domain's facts, created on first use; only domains with templates are kept when full."""
        key = (version, domain_id)
        dom = self.domains.get(key)
        if dom is None:
            if len(self.domains) >= MAX_DOMAINS:
                self.domains = {k: v for k, v in self.domains.items() if k in self.by_domain}
            dom = Domain()
            if len(self.domains) < MAX_DOMAINS:
                self.domains[key] = dom
        return dom

    def add_pending(self, item: Pending) -> None:
        self.pending.append(item)
        self.pending_bytes += len(item.payload)

    def pop_pending(self) -> Pending:
        item = self.pending.popleft()
        self.pending_bytes -= len(item.payload)
        return item

    def take_pending(self, key: TemplateKey) -> list[Pending]:
        """Remove and return the waiting data sets of one template."""
        waiting = [p for p in self.pending if p.key == key]
        if waiting:
            self.pending = deque(p for p in self.pending if p.key != key)
            self.pending_bytes -= sum(len(p.payload) for p in waiting)
        return waiting

    def put(self, key: TemplateKey, template: Template) -> None:
        EPOCH.bump()
        self.templates[key] = template
        self.by_domain.setdefault((key[0], key[1]), {})[key[2]] = template

    def drop(self, key: TemplateKey) -> None:
        EPOCH.bump()
        del self.templates[key]
        ids = self.by_domain.get((key[0], key[1]))
        if ids is not None:
            ids.pop(key[2], None)
            if not ids:
                del self.by_domain[(key[0], key[1])]

    def purge(self, now_ms: int, template_ttl_ms: int, pending_ttl_ms: int) -> tuple[int, int]:
        """Drop expired templates and pending sets; returns how many of each were dropped."""
        self.last_purge_ms = now_ms
        stale = [k for k, t in self.templates.items() if now_ms - t.refreshed_ms > template_ttl_ms]
        for k in stale:
            self.drop(k)
        expired = 0
        while self.pending and now_ms - self.pending[0].received_ms > pending_ttl_ms:
            self.pop_pending()
            expired += 1
        return len(stale), expired
