"""Sessions (ISE pxGrid, NAC files, the API) → the identity graph, in bulk and in time order.

A batch is split into *generations*: each MAC and IP appears at most once per generation, because
FalkorDB 4.16 crashes on ``MERGE ... ON CREATE`` with a repeated key in one UNWIND (decision 0004). Sessions
are applied oldest first, so within a batch a later event wins exactly as it would one by one. Usually a
batch is a single generation: one statement, applied atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.identity.chunk_writer import SessionMergeResult, Writer
from clarion.identity.names import canonical_ip, machine_name, normalise_username
from clarion.identity.state import IdentityCache, after_write, cache_for
from clarion.sources.model import Session
from clarion.store.port import BatchConflictError, GraphStore, Row

STATEMENT = "merge/identity_sessions"
NEW_STATEMENT = "merge/identity_sessions_new"
TOUCH_STATEMENT = "merge/identity_touch"
#: Rows per statement: big enough to amortise a round trip, small enough for a short write lock.
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class SwitchDirectory:
    """Known switches: a session's NAS IP or identifier is resolved to the agent's ``switch_id``."""

    ids: frozenset[str] = frozenset()
    by_mgmt_ip: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, store: GraphStore) -> SwitchDirectory:
        _, rows = store.read_rows("query/identity_switches", {})  # [switch_id, mgmt_ip]
        ids = frozenset(str(switch_id) for switch_id, _ in rows)
        by_ip = {str(mgmt_ip): str(switch_id) for switch_id, mgmt_ip in rows if mgmt_ip}
        return cls(ids, by_ip)

    def resolve(self, nas: str) -> tuple[str, bool]:
        """(switch_id, known) for a session's ``switch_id`` (NAS IP, device name or identifier)."""
        if nas in self.ids:
            return nas, True
        if nas in self.by_mgmt_ip:
            return self.by_mgmt_ip[nas], True
        return nas, False


def generations(sessions: Iterable[Session]) -> list[list[Session]]:
    """Sessions oldest first, split so each MAC and IP occurs once per generation (users are de-duplicated)."""
    ordered = sorted(sessions, key=lambda s: s.timestamp_ms)
    ips = [ip for s in ordered for ip in s.ips]
    if len({s.mac for s in ordered}) == len(ordered) and len(set(ips)) == len(ips):
        return [ordered] if ordered else []  # the usual case: every MAC and IP once
    by_mac: dict[str, int] = {}
    by_ip: dict[str, int] = {}
    out: list[list[Session]] = []
    for s in ordered:
        g = by_mac.get(s.mac, 0)
        for ip in s.ips:
            g = max(g, by_ip.get(ip, 0))
        by_mac[s.mac] = g + 1
        for ip in s.ips:
            by_ip[ip] = g + 1
        if g == len(out):
            out.append([])
        out[g].append(s)
    return out


def prepare(
    sessions: list[Session],
    switches: SwitchDirectory,
    sgt_by_name: Mapping[str, int],
    result: SessionMergeResult,
) -> dict[str, Any]:
    """Parameters of ``merge/identity_sessions`` for one generation (keys already unique; row layouts there)."""
    users: dict[str, list[Any]] = {}
    sgts: dict[int, list[Any]] = {}
    new_switches: dict[str, list[Any]] = {}
    rows: list[list[Any]] = []
    bindings: list[list[Any]] = []
    ends: list[list[Any]] = []
    resolved: dict[str, tuple[str, bool]] = {}
    for s in sessions:
        ts, src, end = s.timestamp_ms, s.source, s.state == "DISCONNECTED"
        user = normalise_username(s.username)
        if user is None and s.username:
            result.skipped_users += 1
        if user is not None:
            users[user] = [user, s.username, ts, src]  # oldest first: the newest login spelling wins
        sgt = s.sgt
        if sgt is None and s.sgt_name:
            sgt = sgt_by_name.get(s.sgt_name)
            if sgt is None:
                result.unresolved_sgt_names.add(s.sgt_name)
        if sgt is not None:
            old = sgts.get(sgt)
            if old is None or (old[1] is None and s.sgt_name):
                sgts[sgt] = [sgt, s.sgt_name, ts, src]
        switch_id = None
        if s.switch_id:
            hit = resolved.get(s.switch_id)
            if hit is None:
                hit = resolved[s.switch_id] = switches.resolve(s.switch_id)
            switch_id, known = hit
            if not known and switch_id not in new_switches:
                new_switches[switch_id] = [switch_id, canonical_ip(s.switch_id), ts, src]
        ips = s.ips
        first_ip = ips[0] if ips and ":" not in ips[0] else next((ip for ip in ips if ":" not in ip), None)
        if first_ip is None and ips:
            first_ip = ips[0]  # IPv6 only
        rows.append(
            [s.mac, ts, src, s.state, end, first_ip, s.endpoint_profile, list(s.ad_groups), machine_name(s.username),
             user, sgt, switch_id, s.interface, s.vlan]
        )  # fmt: skip
        for ip in ips:
            result.ips.add(ip)
            (ends if end else bindings).append([ip, s.mac, ts, ts, src])
    return {
        "users": list(users.values()), "sgts": list(sgts.values()), "switches": list(new_switches.values()),
        "sessions": rows, "bindings": bindings, "ends": ends,
    }  # fmt: skip


def read_confirmed(store: GraphStore, macs: list[str]) -> dict[str, Any]:
    """mac → ``identity_ts`` for the devices that exist (null when no identity source wrote them yet)."""
    _, rows = store.read_rows("query/identity_confirmed", {"macs": macs})
    return {str(mac): ts for mac, ts in rows}


def read_current(store: GraphStore, macs: list[str]) -> dict[str, Row]:
    """mac → the device's current identity (fields, open users, SGTs, IPs, switches), for existing devices."""
    out: dict[str, Row] = {}
    rows = store.read("query/identity_current", {"macs": macs})
    for r in rows:
        if r["kind"] == "d":
            ts, state, profile, switch_id, interface, vlan, hostname = r["value"]
            out[r["mac"]] = {
                "ts": ts, "state": state, "profile": profile, "switch_id": switch_id, "interface": interface,
                "vlan": vlan, "hostname": hostname, "users": [], "sgts": [], "ips": [], "switches": [],
            }  # fmt: skip
    lists = {"u": "users", "t": "sgts", "i": "ips", "s": "switches"}
    for r in rows:
        if r["kind"] != "d" and r["mac"] in out:
            v = r["value"]
            out[r["mac"]][lists[r["kind"]]].append(v[0] if len(v) == 1 else list(v))
    return out


def unchanged(s: Session, cur: Row, switches: SwitchDirectory) -> bool:
    """True when the event only re-confirms what the graph holds now for this device (same user, SGT,
    port, IPs, profile and state, and not older): then only the confirmation time needs writing."""
    ts = cur.get("ts")
    if ts is None or s.timestamp_ms < ts or s.state != cur.get("state") or s.state == "DISCONNECTED":
        return False
    if s.ad_groups or (s.sgt is None and s.sgt_name):  # group names, or an SGT name to resolve: full path
        return False
    user = normalise_username(s.username)
    users = cur.get("users") or ()
    if (users != [user]) if user else bool(users):
        return False
    if s.sgt is not None and not any(t[0] == s.source and t[1] == s.sgt for t in cur.get("sgts") or ()):
        return False
    if s.switch_id is not None:
        switch_id = switches.resolve(s.switch_id)[0]
        if switch_id != cur.get("switch_id") or switch_id not in (cur.get("switches") or ()):
            return False
    if (
        (s.interface is not None and s.interface != cur.get("interface"))
        or (s.vlan is not None and s.vlan != cur.get("vlan"))
        or (s.endpoint_profile is not None and s.endpoint_profile != cur.get("profile"))
    ):
        return False
    if s.ips:
        have = cur.get("ips") or ()
        if any(ip not in have for ip in s.ips):
            return False
    host = machine_name(s.username)
    return host is None or host == cur.get("hostname")


def merge_sessions(
    store: GraphStore,
    sessions: Iterable[Session],
    *,
    sgt_by_name: Mapping[str, int] | None = None,
    chunk: int = CHUNK,
) -> SessionMergeResult:
    """Merge sessions (idempotent: the same sessions twice change nothing the second time).

    Per chunk, the devices' current identity is read first: events for unknown devices take the CREATE path
    (``merge/identity_sessions_new``), events that only re-confirm the current state move the device's
    confirmation time (``merge/identity_touch``), the rest take the full MERGE path. ``sgt_by_name`` resolves
    sessions that carry only ``ctsSecurityGroup``; names already in the graph are used too. Each statement is
    atomic; a failure part-way leaves whole statements applied, and re-sending the batch completes it.
    """
    t0 = time.perf_counter()
    result = SessionMergeResult()
    batch = list(sessions)
    result.sessions = len(batch)
    if not batch:
        return result
    names = dict(sgt_by_name or {})
    for s in batch:  # a session that carries both the number and the name teaches the name to the others
        if s.sgt is not None and s.sgt_name:
            names.setdefault(s.sgt_name, s.sgt)
    if any(s.sgt is None and s.sgt_name and s.sgt_name not in names for s in batch):
        for r in store.read("query/identity_sgt_names", {}):
            names.setdefault(str(r["name"]), int(r["value"]))
    switches = SwitchDirectory.load(store)
    gens = generations(batch)
    result.generations = len(gens)
    pipelined = sum(-(-len(gen) // chunk) for gen in gens) > 1
    with Writer(pipelined=pipelined) as writer:
        for gen in gens:
            for i in range(0, len(gen), chunk):
                _merge_chunk(store, gen[i : i + chunk], switches, names, result, writer)
            writer.drain()  # a later generation repeats this one's MACs: it reads what this one wrote
    for part in writer.results:
        result.add(part)
    result.seconds = time.perf_counter() - t0
    return result


def _merge_chunk(
    store: GraphStore,
    part: list[Session],
    switches: SwitchDirectory,
    names: Mapping[str, int],
    result: SessionMergeResult,
    writer: Writer,
) -> None:
    """One chunk of one generation (each MAC once): classify against the cache or the graph, then write.

    An event the cache says only re-confirms the device is touched without a read: the touch is guarded by
    the ``identity_ts`` the cache expects, and if any guard fails (another writer moved the device) the
    chunk's touches are classified again against the graph. Every other event is classified after a read.
    The chunk's counters go to a result of its own, summed by ``merge_sessions`` once the writer is done.
    """
    counts = writer.counters()
    cache = cache_for(store)
    hot: dict[str, Row] = {}  # the cache entries classified against, kept for the touch's guard
    rest = []
    for s in part:
        entry = cache.peek(s.mac)
        if entry is not None and unchanged(s, entry, switches):
            hot[s.mac] = entry
        else:
            rest.append(s)
    touch = [s for s in part if s.mac in hot]
    if touch:
        writer.drain()  # its answer decides what is read next, and nothing may follow a failed chunk
        rest += _touch(store, touch, hot, cache, counts)  # those whose guard failed: read their state, decide again
    if rest:
        _merge_read(store, rest, switches, names, counts, cache, writer)


def _touch(
    store: GraphStore,
    touch: list[Session],
    current: Mapping[str, Row],
    cache: IdentityCache,
    result: SessionMergeResult,
) -> list[Session]:
    """Move the confirmation time of devices whose ``identity_ts`` is still the one ``current`` holds.

    Returns the events whose guard failed (another writer, e.g. a concurrent request, moved the device since):
    their cache entries are dropped and the caller classifies only those again.
    """
    rows = [[s.mac, s.timestamp_ms, current[s.mac]["ts"]] for s in touch]
    done = store.write(TOUCH_STATEMENT, {"rows": rows})
    result.statements += 1
    if done and done[0].get("touched") == len(rows):
        missed: list[Session] = []
        ok = touch
    else:
        hit = set(done[0].get("macs") or ()) if done else set()
        missed = [s for s in touch if s.mac not in hit]
        ok = [s for s in touch if s.mac in hit]
        for s in missed:
            cache.drop(s.mac)
    for s in ok:
        result.ips.update(s.ips)
    # unchanged() let only events not older than the device's identity through: their time is the new one
    cache.put_many((s.mac, {**current[s.mac], "ts": s.timestamp_ms}) for s in ok)
    result.touched += len(ok)
    return missed


def _merge_read(
    store: GraphStore,
    part: list[Session],
    switches: SwitchDirectory,
    names: Mapping[str, int],
    result: SessionMergeResult,
    cache: IdentityCache,
    writer: Writer,
) -> None:
    """Classify against the graph (cache entries validated by ``identity_ts``), then create, merge or touch.

    The read and the statements' parameters are made here; the writes, and the cache entries of the rows
    they wrote, are handed to ``writer``, so the next chunk is read and prepared while these are written.
    The chunk's MACs and IPs differ from those of every other chunk of its generation, so that read cannot
    see a write it depends on.
    """
    guess: dict[str, Any] | None = None
    guessed = SessionMergeResult()
    if writer.pipelined and writer.all_new:  # a bulk download: prepare the CREATE while the last chunk is written
        guess = prepare(part, switches, names, guessed)  # (FalkorDB's read below waits for that write's lock)
    confirmed = read_confirmed(store, [s.mac for s in part])
    current: dict[str, Row] = {}
    misses = []
    for s in part:
        if s.mac in confirmed:
            hit = cache.get(s.mac, confirmed[s.mac])
            if hit is None:
                misses.append(s.mac)
            else:
                current[s.mac] = hit
    if misses:
        current.update(read_current(store, misses))
    new = [s for s in part if s.mac not in confirmed]
    touch = [s for s in part if s.mac in current and unchanged(s, current[s.mac], switches)]
    touched = {s.mac for s in touch}
    full = [s for s in part if s.mac in confirmed and s.mac not in touched]
    new_params: dict[str, Any] | None = None
    writer.all_new = len(new) == len(part)
    if new and guess is not None and writer.all_new:
        new_params = guess  # the same list in the same order: the same parameters and counters
        result.add(guessed)
        del new_params["ends"]  # a device new to the graph has no open binding to end
    elif new:
        new_params = prepare(new, switches, names, result)
        del new_params["ends"]  # a device new to the graph has no open binding to end
    scratch = SessionMergeResult()  # counters of the full path's parameters, kept if no fallback widens it
    full_params = prepare(full, switches, names, scratch) if full else None

    def write() -> None:
        nonlocal new, full, full_params
        if new_params is not None:
            try:
                store.write(NEW_STATEMENT, new_params)
            except BatchConflictError:  # created concurrently (a flow batch): merge instead
                for s in new:
                    cache.drop(s.mac)
                full = full + new
                new = []
                full_params = None
            result.statements += 1
        stale: set[str] = set()
        missed = _touch(store, touch, current, cache, result) if touch else []
        if missed:
            full = full + missed  # written concurrently since the read: the full path is right whatever the state is
            stale = {s.mac for s in missed}
            full_params = None
        if full:
            if full_params is None:
                full_params = prepare(full, switches, names, result)
            else:
                result.add(scratch)
            store.write(STATEMENT, full_params)
            result.statements += 1
        for s in new + full:
            before = current.get(s.mac)
            if s.mac in stale or (
                before is not None and before.get("ts") is not None and s.timestamp_ms < before["ts"]
            ):
                cache.drop(s.mac)  # an old event arriving late: the graph's current state is not this one
            else:
                switch_id = switches.resolve(s.switch_id)[0] if s.switch_id else None
                cache.put(s.mac, after_write(s, switch_id, before))
        result.created += len(new)

    writer.submit(write)
