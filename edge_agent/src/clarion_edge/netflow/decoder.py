"""The NetFlow v5 / v9 / IPFIX decoder: datagrams in, ``FLOW_DTYPE`` arrays out, no sockets.

Headers are checked in Python (a few struct calls per datagram). In a batch, set boundaries
are found for all messages at once with numpy (``bulk.py``); messages with template sets or
anything unusual are walked set by set here; v5 datagrams go to ``v5.py``. Records are decoded
in bulk: data sets of one compiled template are joined across the batch and read with a single
``np.frombuffer``. Bad input is never raised: it is counted per exporter and per reason in
``stats``, kept with the per-exporter state and its bounds in ``exporter_table.py``.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

import numpy as np

from clarion_edge.netflow.alloc import keep_freed_memory
from clarion_edge.netflow.bulk import Message, decode_messages
from clarion_edge.netflow.exporter_table import OVERFLOW, ExporterTable
from clarion_edge.netflow.fields import Field, Plan
from clarion_edge.netflow.group import Group, bump
from clarion_edge.netflow.learn import learn_template_set
from clarion_edge.netflow.records import FLOW_DTYPE
from clarion_edge.netflow.state import Domain, ExporterState, Pending, Template, TemplateKey
from clarion_edge.netflow.templates import (
    BadSetError,
    iter_records,
)
from clarion_edge.netflow.v5 import V5_PLAN, add_v5, add_v5_batch, add_v5_joined

__all__ = ["BULK_MIN_MESSAGES", "MAX_OPTION_RECORDS_PER_SET", "MAX_PENDING_BYTES", "V5_PLAN", "Decoder"]

log = logging.getLogger(__name__)

_V9_HEADER = struct.Struct("!HHIIII")  # 20 bytes
_IPFIX_HEADER = struct.Struct("!HHIII")  # 16 bytes
_SET_HEADER = struct.Struct("!HH")
_NO_DOMAIN = Domain()
_UNSET: Any = object()
_DATA, _EXPORTER = itemgetter(0), itemgetter(1)
#: Option data records decoded per set at most (they are a handful in real streams).
MAX_OPTION_RECORDS_PER_SET = 4096
#: Bytes of data sets waiting for templates, across all exporters.
MAX_PENDING_BYTES = 32 << 20
#: Batches with fewer v9/IPFIX messages than this take the sequential set walk.
BULK_MIN_MESSAGES = 8


class Decoder(ExporterTable):
    """Stateful decoder for any number of exporters; not thread-safe (one per listener thread)."""

    def __init__(
        self,
        *,
        template_ttl_s: float = 1800,
        max_templates_per_exporter: int = 1024,
        pending_max_datagrams: int = 256,
        pending_ttl_s: float = 30,
        max_exporters: int = 4096,
    ) -> None:
        super().__init__(
            template_ttl_ms=int(template_ttl_s * 1000),
            pending_ttl_ms=int(pending_ttl_s * 1000),
            max_exporters=max_exporters,
        )
        keep_freed_memory()  # once per process: batches reuse freed memory instead of page-faulting
        self._max_templates = max_templates_per_exporter
        self._pending_max = pending_max_datagrams
        self._plans: dict[tuple[Field, ...], Plan] = {}
        self._groups: dict[int, Group] = {}
        self._msgs: list[Message] = []
        self._batch = 0

    def decode(self, data: bytes, exporter: str, received_ms: int) -> np.ndarray:
        """Decode one datagram from ``exporter`` ("ip:port" or "ip") into an array of FLOW_DTYPE."""
        return self.decode_batch(((data, exporter, received_ms),))

    def decode_batch(self, datagrams: Iterable[tuple[bytes, str, int]]) -> np.ndarray:
        """Decode many datagrams at once: the fast path, since records of one template decode together."""
        if not isinstance(datagrams, list | tuple):
            datagrams = list(datagrams)
        self._groups = {}
        self._batch += 1
        if self._v5_only(datagrams):
            return self._convert()
        self._msgs = msgs = []
        # Per exporter and receive time: [stats, exporter state (looked up on first v9/IPFIX use), datagrams].
        seen: dict[str, list[Any]] = {}
        unpack_v9, unpack_ipfix = _V9_HEADER.unpack_from, _IPFIX_HEADER.unpack_from
        v5: list[bytes] = []
        v5_stats: list[dict[str, int]] = []
        for data, exporter, received_ms in datagrams:
            entry = seen.get(exporter)
            if entry is None or entry[3] != received_ms:
                if entry is not None:
                    bump(entry[0], "datagrams", entry[2])
                entry = seen[exporter] = [self._stats_for(exporter), _UNSET, 0, received_ms]
            entry[2] += 1
            stats = entry[0]
            try:
                if type(data) is not bytes:
                    data = bytes(data)
                # The common case inline (one v9 / IPFIX header per datagram); the rest in _datagram.
                if len(data) >= _V9_HEADER.size and data[0] == 0 and data[1] in (9, 10):
                    state = entry[1]
                    if state is _UNSET:
                        state = entry[1] = self._exporter(exporter, received_ms)
                    if state is None:
                        bump(stats, "exporter_limit")
                    elif data[1] == 9:
                        _, _, uptime, secs, _, source_id = unpack_v9(data)
                        msgs.append((data, 20, len(data), state, 9, source_id, secs * 1000, uptime, received_ms, stats))
                    else:
                        _, length, export_s, _, domain = unpack_ipfix(data)
                        if _IPFIX_HEADER.size <= length <= len(data):
                            msgs.append((data, 16, length, state, 10, domain, export_s * 1000, -1, received_ms, stats))
                        else:
                            self._ipfix(data, state, received_ms, stats)  # counts the bad length
                elif len(data) >= 4 and data[0] == 0 and data[1] == 5:
                    v5.append(data)
                    v5_stats.append(stats)
                else:
                    self._datagram(data, exporter, received_ms, stats)
            except Exception:  # a decoder bug must not stop collection; fuzzing keeps this at zero
                log.exception("netflow decoder error on a datagram from %s", exporter)
                bump(stats, "internal_error")
        for entry in seen.values():
            bump(entry[0], "datagrams", entry[2])
        if len(v5) >= BULK_MIN_MESSAGES:
            try:
                add_v5_batch(v5, v5_stats, self._groups)
            except Exception:
                log.exception("netflow decoder error on a batch of v5 datagrams")
                bump(self._stats_for(OVERFLOW), "internal_error")
        else:
            for data, stats in zip(v5, v5_stats, strict=True):
                add_v5(data, self._groups, stats)
        self._msgs = []
        if len(msgs) >= BULK_MIN_MESSAGES:
            try:
                decode_messages(self, msgs)
            except Exception:
                log.exception("netflow decoder error walking a batch")
                bump(self._stats_for(OVERFLOW), "internal_error")
        else:
            for m in msgs:
                try:
                    self._sets(*m)
                except Exception:
                    log.exception("netflow decoder error on a datagram")
                    bump(m[-1], "internal_error")
        return self._convert()

    def _v5_only(self, datagrams: list[tuple[bytes, str, int]] | tuple[tuple[bytes, str, int], ...]) -> bool:
        """Queue a batch of one exporter's v5 datagrams without a Python step per datagram; False if it is not one."""
        n = len(datagrams)
        if n < BULK_MIN_MESSAGES or bytes(datagrams[0][0][:2]) != b"\x00\x05":  # v9/IPFIX: no join here
            return False
        if len(set(map(_EXPORTER, datagrams))) != 1:
            return False
        datas = list(map(_DATA, datagrams))
        sizes = np.fromiter(map(len, datas), dtype=np.int64, count=n)
        if int(sizes.min()) < 4:
            return False
        base = np.zeros(n, dtype=np.int64)
        np.cumsum(sizes[:-1], out=base[1:])
        buf = np.frombuffer(b"".join(datas), dtype=np.uint8)
        if not ((buf[base] == 0) & (buf[base + 1] == 5)).all():
            return False
        stats = self._stats_for(datagrams[0][1])
        bump(stats, "datagrams", n)
        try:
            add_v5_joined(buf, sizes, base, [stats] * n, self._groups)
        except Exception:
            log.exception("netflow decoder error on a batch of v5 datagrams")
            bump(self._stats_for(OVERFLOW), "internal_error")
        return True

    def _convert(self) -> np.ndarray:
        """Convert the batch's queued records, each template group into its slice of one output array."""
        groups, self._groups = self._groups, {}
        sizes = [g.size() for g in groups.values()]
        out = np.zeros(sum(sizes), dtype=FLOW_DTYPE)  # every group converts into its own slice: no concatenation
        lo, failed = 0, []
        for group, n in zip(groups.values(), sizes, strict=True):
            try:
                group.decode(out[lo : lo + n])
            except Exception:
                log.exception("netflow decoder error converting a batch")
                bump(self._stats_for(OVERFLOW), "internal_error")
                failed.append(np.arange(lo, lo + n))
            lo += n
        return np.delete(out, np.concatenate(failed)) if failed else out

    # -- datagrams -------------------------------------------------------------------------------

    def _datagram(self, data: bytes, exporter: str, received_ms: int, stats: dict[str, int]) -> None:
        if len(data) < 4:
            bump(stats, "truncated")
            return
        version = (data[0] << 8) | data[1]
        if version == 5:
            add_v5(data, self._groups, stats)
        elif version in (9, 10):
            state = self._exporter(exporter, received_ms)
            if state is None:
                bump(stats, "exporter_limit")
            elif version == 9:
                self._v9(data, state, received_ms, stats)
            else:
                self._ipfix(data, state, received_ms, stats)
        else:
            bump(stats, "bad_version")

    def _v9(self, data: bytes, state: ExporterState, received_ms: int, stats: dict[str, int]) -> None:
        if len(data) < _V9_HEADER.size:
            bump(stats, "truncated")
            return
        _, _count, uptime, secs, _seq, source_id = _V9_HEADER.unpack_from(data)
        self._msgs.append(
            (data, _V9_HEADER.size, len(data), state, 9, source_id, secs * 1000, uptime, received_ms, stats)
        )

    def _ipfix(self, data: bytes, state: ExporterState, received_ms: int, stats: dict[str, int]) -> None:
        if len(data) < _IPFIX_HEADER.size:
            bump(stats, "truncated")
            return
        _, length, export_s, _seq, domain = _IPFIX_HEADER.unpack_from(data)
        if length < _IPFIX_HEADER.size:
            bump(stats, "bad_length")
            return
        if length > len(data):
            bump(stats, "truncated")
            return
        self._msgs.append(
            (data, _IPFIX_HEADER.size, length, state, 10, domain, export_s * 1000, -1, received_ms, stats)
        )

    def _sets(
        self, data: bytes, off: int, end: int, state: ExporterState, version: int, domain: int, export_ms: int,
        uptime_ms: int, now: int, stats: dict[str, int],
    ) -> None:  # fmt: skip
        """Walk the sets of one message. Data sets of known fixed-length templates are queued inline
        (this loop is the per-datagram cost of the bulk path); everything else goes to the slow path."""
        templates = state.by_domain.get((version, domain)) or {}
        dom = state.domains.get((version, domain)) or _NO_DOMAIN  # created with the domain's first template
        ctx = self._context(version, export_ms, uptime_ms, dom)
        groups = self._groups
        batch = self._batch
        ttl = self._template_ttl_ms
        template_set, options_set = (0, 1) if version == 9 else (2, 3)
        records = 0
        while end - off >= 4:
            set_id, set_len = _SET_HEADER.unpack_from(data, off)
            nxt = off + set_len
            if set_len < 4:
                bump(stats, "bad_length")
                break
            if nxt > end:
                bump(stats, "truncated")
                break
            t = templates.get(set_id) if set_id >= 256 else None
            if t is not None and t.fast and now - t.refreshed_ms <= ttl:
                n = (set_len - 4) // t.reclen
                if n:
                    if t.batch == batch:
                        group: Group = t.group  # type: ignore[assignment]
                    else:
                        group = t.group = groups[id(t)] = Group(t.plan, t.domain, t, stats)
                        t.batch = batch
                    if ctx is not group.ctx:
                        group.runs.append((group.total, *ctx))
                        group.ctx = ctx
                    group.bufs.append(data[off + 4 : off + 4 + n * t.reclen])
                    group.total += n
                    records += n
            elif set_id >= 256:
                self._data((version, domain, set_id), data[off + 4 : nxt], export_ms, uptime_ms, state, now, stats)
                ctx = self._context(version, export_ms, uptime_ms, dom)  # option records may have changed it
            elif set_id in (template_set, options_set):
                learn_template_set(self, state, version, domain, set_id, data[off + 4 : nxt], now, stats)
                templates = state.by_domain.get((version, domain)) or {}
                dom = state.domains.get((version, domain)) or _NO_DOMAIN
                ctx = self._context(version, export_ms, uptime_ms, dom)  # pending sets may have run
            else:
                bump(stats, "bad_set_id")
            off = nxt
        if records:
            stats["records"] = stats.get("records", 0) + records

    @staticmethod
    def _context(version: int, export_ms: int, uptime_ms: int, dom: Domain) -> tuple[int, int, int]:
        """(export ms, uptime ms, default sampling) of a message; IPFIX uptime comes from systemInitTime."""
        if version == 10:
            uptime_ms = export_ms - dom.init_ms if dom.init_ms >= 0 else -1
        return (export_ms, uptime_ms, dom.sampling)

    # -- data sets -------------------------------------------------------------------------------

    def _data(
        self, key: TemplateKey, payload: bytes, export_ms: int, uptime_ms: int, state: ExporterState, now: int,
        stats: dict[str, int],
    ) -> None:  # fmt: skip
        """Slow path for a data set: unknown or expired template, options, variable-length fields."""
        template = state.templates.get(key)
        if template is not None and now - template.refreshed_ms > self._template_ttl_ms:
            state.drop(key)
            bump(stats, "template_expired")
            template = None
        if template is None:
            self._pend(Pending(key, payload, export_ms, uptime_ms, now), state, stats)
            return
        domain = template.domain
        ctx = self._context(key[0], export_ms, uptime_ms, domain)
        if template.options:
            self._options(template, payload, domain, stats)
        elif template.plan.varlen:
            self._varlen(template, payload, ctx, stats)
        else:
            n = len(payload) // template.reclen
            if n:
                self._group(template, stats).add(payload[: n * template.reclen], n, ctx)
                bump(stats, "records", n)

    def _pend(self, item: Pending, state: ExporterState, stats: dict[str, int]) -> None:
        bump(stats, "unknown_template_pending")
        before = state.pending_bytes
        while state.pending and item.received_ms - state.pending[0].received_ms > self._pending_ttl_ms:
            state.pop_pending()
            bump(stats, "pending_expired")
        if state.pending and len(state.pending) >= self._pending_max:
            state.pop_pending()
            bump(stats, "pending_overflow")
        self._pending_bytes -= before - state.pending_bytes
        if self._pending_max <= 0 or self._pending_bytes + len(item.payload) > MAX_PENDING_BYTES:
            bump(stats, "pending_overflow")  # all exporters together hold at most MAX_PENDING_BYTES
            return
        state.add_pending(item)
        self._pending_bytes += len(item.payload)

    def _varlen(self, template: Template, payload: bytes, ctx: tuple[int, int, int], stats: dict[str, int]) -> None:
        """Slow path: walk records one by one and pack their fixed-length fields for the bulk converter."""
        plan = template.plan
        keep = [f.length != 0xFFFF for f in plan.fields]
        packed: list[bytes] = []
        try:
            for values in iter_records(payload, plan.fields):
                packed.append(b"".join(v for v, k in zip(values, keep, strict=True) if k))
        except BadSetError as bad:
            bump(stats, bad.reason)
        if not packed:
            return
        if plan.reclen == 0:
            bump(stats, "records_without_fields", len(packed))
            return
        self._group(template, stats).add(b"".join(packed), len(packed), ctx)
        bump(stats, "records", len(packed))

    def _options(self, template: Template, payload: bytes, domain: Domain, stats: dict[str, int]) -> None:
        """Option data records (sampler, system init time) update state; they are not flows."""
        plan = template.plan
        count = 0
        domain.last_options = None
        try:
            for values in iter_records(payload, plan.fields):
                count += 1
                if count > MAX_OPTION_RECORDS_PER_SET:
                    bump(stats, "options_records_dropped")
                    return
                facts: dict[tuple[int, int], int] = {}
                for f, raw in zip(plan.fields, values, strict=True):
                    if 1 <= len(raw) <= 8:
                        facts.setdefault((f.pen, f.ie), int.from_bytes(raw, "big"))
                domain.apply_option(facts)
                bump(stats, "options_records")
        except BadSetError as bad:
            bump(stats, bad.reason)
            return
        if count:
            domain.last_options = (template, payload, count)

    def _group(self, template: Template, stats: dict[str, int]) -> Group:
        if template.batch == self._batch:
            return template.group  # type: ignore[return-value]
        group = template.group = self._groups[id(template)] = Group(template.plan, template.domain, template, stats)
        template.batch = self._batch
        return group
