"""Vectorised set walk: the set boundaries of many v9 / IPFIX messages at once, with numpy.

Walking sets one by one in Python costs about a microsecond per set, and exporters such as
softflowd put only a few records in each set. Here round k reads the k-th set header of every
message in one go, so a batch of messages costs a few numpy calls per round instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clarion_edge.netflow.group import bump
from clarion_edge.netflow.state import EPOCH, ExporterState, Template

if TYPE_CHECKING:
    from clarion_edge.netflow.decoder import Decoder

#: (datagram, first set offset, message end, exporter state, version, domain, export ms, header uptime ms,
#: received ms, stats) of a v9/IPFIX message whose header checked out.
Message = tuple[bytes, int, int, ExporterState, int, int, int, int, int, dict[str, int]]
#: Rounds of the walk; messages with more sets than this are left to the sequential walk.
MAX_ROUNDS = 64


@dataclass(slots=True)
class SetTable:
    """Every well-formed set of the walked messages, ordered by (message, offset)."""

    msg: np.ndarray  # int64: message index
    off: np.ndarray  # int64: offset of the set header in the joined buffer
    set_id: np.ndarray  # int64
    length: np.ndarray  # int64: set length including its 4-byte header
    first: np.ndarray  # int64, len(messages) + 1: index of each message's first set
    irregular: np.ndarray  # bool per message: a set length did not fit, or too many sets


def walk_sets(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> SetTable:
    """Set headers of messages laid out in ``buf`` (uint8), each from ``start`` up to ``end``.

    Messages must lie in ``buf`` in order, one after the other (as ``decode_messages`` joins them).
    """
    count = len(start)
    start = start.astype(np.int64, copy=False)
    end = end.astype(np.int64, copy=False)
    irregular = np.zeros(count, dtype=bool)
    # A set header is one big-endian word (set id << 16 | length): read through a view with a word at every byte.
    words = np.ndarray((max(len(buf) - 3, 0),), dtype=">u4", buffer=buf, strides=(1,))
    p = start[end - start >= 4]  # per message still walking: offset of its next set header
    rem = end[end - start >= 4] - p  # and the bytes left after it
    parts: list[np.ndarray] = []
    bad: list[np.ndarray] = []  # offsets where a set length did not fit
    for k in range(MAX_ROUNDS):
        if p.size <= _TAIL:  # the last few long messages: cheaper in Python than a dozen numpy calls per round
            tail, tail_bad = _walk_tail(buf, p.tolist(), rem.tolist(), MAX_ROUNDS - k)
            parts.append(np.array(tail, dtype=np.int64))
            bad.append(np.array(tail_bad, dtype=np.int64))
            break
        length = words[p] & 0xFFFF
        rem -= length
        ok = (length >= 4) & (rem >= 0)
        if not ok.all():
            bad.append(p[~ok])
            p, length, rem = p[ok], length[ok], rem[ok]
        parts.append(p)
        more = rem >= 4
        p, rem = (p + length)[more], rem[more]
    else:
        bad.append(p)
    bad_at = np.concatenate(bad) if bad else np.zeros(0, dtype=np.int64)
    if bad_at.size:
        irregular[np.searchsorted(start, bad_at, side="right") - 1] = True
    if parts:
        # Messages lie in order in buf: offset order is (message, offset) order. Offsets are distinct, so
        # a value sort (SIMD) replaces an argsort; each set's header and message are looked up after it.
        off = np.sort(np.concatenate(parts))
        header = words[off].astype(np.int64)
        msg = np.searchsorted(start, off, side="right") - 1
    else:
        msg = off = header = np.zeros(0, dtype=np.int64)
    first = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(msg, minlength=count), out=first[1:])
    return SetTable(msg, off, header >> 16, header & 0xFFFF, first, irregular)


#: Messages still walking below which the rest of the walk runs in Python.
_TAIL = 24


def _walk_tail(buf: np.ndarray, pos: list[int], rem: list[int], rounds: int) -> tuple[list[int], list[int]]:
    """The rest of the walk for a few messages: (set header offsets, offsets where a length did not fit
    or the rounds ran out), exactly as the numpy rounds would find them."""
    raw = buf.base if isinstance(buf.base, bytes) else buf.tobytes()
    sets: list[int] = []
    bad: list[int] = []
    for p, r in zip(pos, rem, strict=True):
        for _ in range(rounds):
            length = (raw[p + 2] << 8) | raw[p + 3]
            r -= length
            if length < 4 or r < 0:
                bad.append(p)
                break
            sets.append(p)
            if r < 4:
                break
            p += length
        else:
            bad.append(p)
    return sets, bad


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, ascending: a value sort and a mask (numpy's ``unique``
    hashes integers, several times slower on the few thousand values of a batch)."""
    if len(a) < 2:
        return a.copy()
    s = np.sort(a)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def gather(buf: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The byte ranges ``[start, start + size)`` of ``buf`` joined into one contiguous uint8 array."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint8)
    index_type = np.int32 if len(buf) < (1 << 31) else np.int64  # half the index memory traffic
    shift = (starts - (np.cumsum(sizes) - sizes)).astype(index_type)
    index = np.repeat(shift, sizes)
    index += np.arange(total, dtype=index_type)
    gathered: np.ndarray = buf[index]
    return gathered


def gather_records(buf: np.ndarray, starts: np.ndarray, counts: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``counts[i]`` back-to-back records of ``dtype`` from byte ``starts[i]`` of ``buf``, as one array.

    ``buf`` is viewed as a record starting at every byte (stride 1), so the gather copies whole
    records with one index per record instead of one per byte.
    """
    total = int(counts.sum())
    size = dtype.itemsize
    if total == 0 or len(buf) < size:
        return np.zeros(0, dtype=dtype)
    # Opaque records: numpy copies a plain void item with one memcpy, a structured one field by field (7x slower).
    every_byte = np.ndarray((len(buf) - size + 1,), dtype=np.dtype((np.void, size)), buffer=buf, strides=(1,))
    first = np.cumsum(counts) - counts  # index of each set's first record in the output
    index = np.repeat(starts - first * size, counts)
    index += np.arange(0, total * size, size, dtype=np.int64)
    records: np.ndarray = every_byte[index].view(dtype)
    return records


def decode_messages(decoder: Decoder, msgs: list[Message]) -> None:
    """Walk the sets of a batch with numpy, then queue the data sets per template in bulk.

    Messages holding anything else (template sets, options data, unknown or variable-length
    templates, irregular lengths) are walked sequentially in order. Templates are resolved once
    for a stretch of messages; when a sequential message changes what a set decodes to (EPOCH
    moves), the stretch before it is queued and resolution starts over after it.
    """
    cols = list(zip(*msgs, strict=True))  # one column per Message field, transposed in C
    datas = cols[0]
    sizes = np.fromiter(map(len, datas), dtype=np.int64, count=len(msgs))
    base = np.zeros(len(msgs), dtype=np.int64)
    np.cumsum(sizes[:-1], out=base[1:])
    buf = np.frombuffer(b"".join(datas), dtype=np.uint8)
    table = walk_sets(buf, base + np.array(cols[1], dtype=np.int64), base + np.array(cols[2], dtype=np.int64))
    if len(set(map(id, cols[3]))) == 1 and len(set(cols[4])) == 1:
        # One exporter, one version (an agent per switch): the domain alone names the context.
        ctx_ids = np.array(cols[5], dtype=np.int64)
    else:
        contexts: dict[tuple[int, int, int], int] = {}
        ctx_ids = np.array(
            [contexts.setdefault(key, len(contexts)) for key in zip(map(id, cols[3]), cols[4], cols[5], strict=True)],
            dtype=np.int64,
        )
    heads = np.array((cols[6], cols[7]), dtype=np.int64)  # each message's export ms and header uptime ms
    start = 0
    while start < len(msgs):
        start = _stretch(decoder, msgs, buf, table, ctx_ids, heads, start)


def _stretch(
    decoder: Decoder, msgs: list[Message], buf: np.ndarray, table: SetTable, ctx_ids: np.ndarray, heads: np.ndarray,
    lo: int,
) -> int:  # fmt: skip
    """Resolve templates for messages from ``lo`` on and queue them; returns where to start over."""
    hi = len(msgs)
    s0 = int(table.first[lo])
    keys = ctx_ids[table.msg[s0:]] * 65536 + table.set_id[s0:]
    uniq = sorted_unique(keys)
    index = np.searchsorted(uniq, keys)
    first = np.empty(len(uniq), dtype=np.int64)
    first[index] = np.arange(len(keys))  # any set of a key will do: the key names its exporter and domain
    now = msgs[-1][8]
    ttl = decoder._template_ttl_ms
    templates: list[Template | None] = []
    found: list[Template | None] = []
    for k in first.tolist():
        m = msgs[int(table.msg[s0 + k])]
        sid = int(table.set_id[s0 + k])
        t = m[3].by_domain.get((m[4], m[5]), {}).get(sid) if sid >= 256 else None
        found.append(t)
        templates.append(t if t is not None and t.fast and now - t.refreshed_ms <= ttl else None)
    # The header facts the queued records get are those of now: they only change with EPOCH.
    facts = {id(t.domain): (t.domain.sampling, t.domain.init_ms) for t in templates if t is not None}
    slow_slots = np.array([t is None for t in templates], dtype=bool)
    sequential = table.irregular.copy()
    slow_sets = np.flatnonzero(slow_slots[index])
    repeats: dict[int, Repeat] = {}
    if slow_sets.size:
        repeats = _repeats(msgs, buf, table, s0, slow_sets, index, found, now, ttl)
        if len(repeats) < slow_sets.size:
            left = slow_sets[[i not in repeats for i in slow_sets.tolist()]]
            sequential[table.msg[s0:][left]] = True
    for j in np.flatnonzero(sequential[lo:hi]).tolist():
        epoch = EPOCH.value
        decoder._sets(*msgs[lo + j])
        if EPOCH.value != epoch:
            _queue(decoder, msgs, buf, table, heads, lo, lo + j, sequential, index, templates, facts, slow_slots)
            _replay(msgs, table, s0, lo, lo + j, sequential, repeats)
            return lo + j + 1
    _queue(decoder, msgs, buf, table, heads, lo, hi, sequential, index, templates, facts, slow_slots)
    _replay(msgs, table, s0, lo, hi, sequential, repeats)
    return hi


#: What a set that repeats what the state already holds still does: refresh these templates, or count
#: this many option records.
Repeat = list[Template] | int


def _repeats(
    msgs: list[Message], buf: np.ndarray, table: SetTable, s0: int, sets: np.ndarray, index: np.ndarray,
    found: list[Template | None], now: int, ttl: int,
) -> dict[int, Repeat]:  # fmt: skip
    """The sets (numbered from ``s0``) among ``sets`` that change nothing but timestamps and counters.

    Exporters resend their template sets and option data every few datagrams. A template set
    byte-identical to one whose templates are all still in place (and fresh), or an option data set
    identical to the last one its domain applied, needs no sequential walk.
    """
    out: dict[int, Repeat] = {}
    at = sets + s0
    # Slicing the joined bytes ``buf`` views is several times cheaper per set than a numpy slice's tobytes().
    raw = buf.base if isinstance(buf.base, bytes) else buf.tobytes()
    seen: dict[tuple[int, int, int, int, bytes], list[Template] | None] = {}  # a batch repeats the same few sets
    rows = zip(sets.tolist(), table.msg[at].tolist(), table.set_id[at].tolist(), table.off[at].tolist(),
               table.length[at].tolist(), index[sets].tolist(), strict=True)  # fmt: skip
    for i, mi, sid, off, length, slot in rows:
        m = msgs[mi]
        state, version, domain = m[3], m[4], m[5]
        payload = raw[off + 4 : off + length]
        if sid < 256:
            if sid not in ((0, 1) if version == 9 else (2, 3)):
                continue
            memo = (id(state), version, domain, sid, payload)
            if memo not in seen:
                known = state.template_sets.get((version, domain, sid, payload))
                fresh = known and all(state.templates.get(k) is t and now - t.refreshed_ms <= ttl for k, t in known)
                seen[memo] = [t for _, t in known] if known and fresh else None
            refreshed = seen[memo]
            if refreshed is not None:
                out[i] = refreshed
            continue
        t = found[slot]
        if t is None or not t.options or now - t.refreshed_ms > ttl:
            continue
        last = t.domain.last_options
        if last is not None and last[0] is t and last[1] == payload:
            out[i] = last[2]
    return out


def _replay(
    msgs: list[Message], table: SetTable, s0: int, lo: int, hi: int, sequential: np.ndarray,
    repeats: dict[int, Repeat],
) -> None:  # fmt: skip
    """Apply what the repeated sets of messages [lo, hi) not walked sequentially still do."""
    for i, effect in repeats.items():
        mi = int(table.msg[s0 + i])
        if lo <= mi < hi and not sequential[mi]:
            m = msgs[mi]
            if isinstance(effect, int):
                bump(m[9], "options_records", effect)
            else:
                for t in effect:
                    t.refreshed_ms = max(t.refreshed_ms, m[8])


def _queue(
    decoder: Decoder, msgs: list[Message], buf: np.ndarray, table: SetTable, heads: np.ndarray, lo: int, hi: int,
    sequential: np.ndarray, index: np.ndarray, templates: list[Template | None], facts: dict[int, tuple[int, int]],
    slow: np.ndarray,
) -> None:  # fmt: skip
    """Gather the records of the data sets of messages [lo, hi) not walked sequentially, per template."""
    s0, s1 = int(table.first[lo]), int(table.first[hi])
    if s1 <= s0:
        return
    msg = table.msg[s0:s1]
    keep = np.flatnonzero(~sequential[msg] & ~slow[index[: s1 - s0]])  # repeated sets are replayed, not queued
    if not keep.size:
        return
    msg, slots = msg[keep], index[: s1 - s0][keep]
    lengths, offsets = table.length[s0:s1][keep], table.off[s0:s1][keep]
    export, header_uptime = heads[0][msg], heads[1][msg]
    for slot in sorted_unique(slots).tolist():
        t = templates[slot]
        assert t is not None  # sets of slow templates put their message on the sequential walk
        sel = np.flatnonzero(slots == slot)
        counts = (lengths[sel] - 4) // t.reclen
        total = int(counts.sum())
        if not total:  # sets too short for one record (padding only), as the sequential walk skips them
            continue
        data = gather_records(buf, offsets[sel] + 4, counts, t.plan.dtype)
        sampling, init_ms = facts[id(t.domain)]
        first_msg = msgs[int(msg[sel[0]])]
        if first_msg[4] == 10:  # IPFIX: uptime from the domain's systemInitTimeMilliseconds
            uptime = export[sel] - init_ms if init_ms >= 0 else np.full(len(sel), -1, dtype=np.int64)
        else:
            uptime = header_uptime[sel]
        decoder._group(t, first_msg[9]).chunks.append((data, counts, export[sel], uptime, sampling))
        bump(first_msg[9], "records", total)
