"""What the session merger last wrote per device, so a re-confirming pxGrid event costs no read.

Most session events re-state what ISE said before (re-authentication, profiling). The merger remembers,
per store and per process, the identity it last wrote for each MAC together with the device's
``identity_ts`` at that moment. The entry is trusted only while the graph still has that ``identity_ts``
(every identity write moves it), so another API replica or source writing the same device simply causes
a miss and a read. Bounded (LRU); losing it costs reads, never correctness.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from clarion.identity.names import machine_name, normalise_username
from clarion.sources.model import Session
from clarion.store.port import GraphStore, Row

MAX_ENTRIES = 500_000


class IdentityCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, Row] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, mac: str, confirmed_ts: Any) -> Row | None:
        """The remembered state, if the graph's ``identity_ts`` still matches it."""
        with self._lock:
            entry = self._entries.get(mac)
            if entry is None or entry["ts"] != confirmed_ts:
                return None
            self._entries.move_to_end(mac)
            return entry

    def peek(self, mac: str) -> Row | None:
        """The remembered state, unchecked: only for a write guarded by its ``ts`` (``merge/identity_touch``)."""
        with self._lock:
            return self._entries.get(mac)

    def put(self, mac: str, state: Row) -> None:
        with self._lock:
            self._entries[mac] = state
            self._entries.move_to_end(mac)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def put_many(self, items: Iterable[tuple[str, Row]]) -> None:
        with self._lock:
            entries = self._entries
            for mac, state in items:
                entries[mac] = state
                entries.move_to_end(mac)
            while len(entries) > self._max:
                entries.popitem(last=False)

    def drop(self, mac: str) -> None:
        with self._lock:
            self._entries.pop(mac, None)

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: weakref.WeakKeyDictionary[Any, IdentityCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(store: GraphStore) -> IdentityCache:
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = IdentityCache()
        return cache


def after_write(s: Session, switch_id: str | None, before: Row | None) -> Row:
    """The device's identity once ``s`` (the newest event) was merged by the full or create path.

    Interface and VLAN are a switch port's: the statements write them only with a switch, and so does this.
    """
    ended = s.state == "DISCONNECTED"
    user = normalise_username(s.username)
    port = switch_id is not None
    if before is None:  # a device new to the graph (the bulk download): nothing to carry over
        return {
            "ts": s.timestamp_ms, "state": s.state, "profile": s.endpoint_profile, "switch_id": switch_id,
            "interface": s.interface if port else None, "vlan": s.vlan if port else None,
            "hostname": machine_name(s.username), "users": [user] if user is not None and not ended else [],
            "sgts": [[s.source, s.sgt]] if s.sgt is not None else [], "ips": [] if ended else sorted(set(s.ips)),
            "switches": [switch_id] if port else [],
        }  # fmt: skip
    prev = before
    sgts = [t for t in prev.get("sgts") or [] if t[0] != s.source]
    if s.sgt is not None:
        sgts.append([s.source, s.sgt])
    else:
        sgts += [t for t in prev.get("sgts") or [] if t[0] == s.source]
    ips = set(prev.get("ips") or [])
    ips = ips - set(s.ips) if ended else ips | set(s.ips)
    switches = set(prev.get("switches") or [])
    if switch_id is not None:
        switches.add(switch_id)
    return {
        "ts": s.timestamp_ms, "state": s.state,
        "profile": s.endpoint_profile if s.endpoint_profile is not None else prev.get("profile"),
        "switch_id": switch_id if switch_id is not None else prev.get("switch_id"),
        "interface": s.interface if port and s.interface is not None else prev.get("interface"),
        "vlan": s.vlan if port and s.vlan is not None else prev.get("vlan"),
        "hostname": machine_name(s.username) or prev.get("hostname"),
        "users": [user] if user is not None and not ended else [],
        "sgts": sgts, "ips": sorted(ips), "switches": sorted(switches),
    }  # fmt: skip
