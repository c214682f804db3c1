"""Sessions (ISE pxGrid, NAC files, the API) → the identity graph, in bulk and in time order.

A batch is split into *generations*: each MAC, IP and username appears at most once per generation, because
FalkorDB 4.16 crashes on ``MERGE ... ON CREATE`` with a repeated key in one UNWIND (decision 0004). Sessions
are applied oldest first, so within a batch a later event wins exactly as it would one by one. Usually a
batch is a single generation: one statement, applied atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.identity.names import canonical_ip, machine_name, normalise_username
from clarion.sources.model import Session
from clarion.store.port import GraphStore

STATEMENT = "merge/identity_sessions"
#: Rows per statement: big enough to amortise a round trip, small enough for a short write lock.
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class SwitchDirectory:
    """Known switches: a session's NAS IP or identifier is resolved to the agent's ``switch_id``."""

    ids: frozenset[str] = frozenset()
    by_mgmt_ip: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, store: GraphStore) -> SwitchDirectory:
        rows = store.read("query/identity_switches", {})
        ids = frozenset(str(r["switch_id"]) for r in rows)
        by_ip = {str(r["mgmt_ip"]): str(r["switch_id"]) for r in rows if r.get("mgmt_ip")}
        return cls(ids, by_ip)

    def resolve(self, nas: str) -> tuple[str, bool]:
        """(switch_id, known) for a session's ``switch_id`` (NAS IP, device name or identifier)."""
        if nas in self.ids:
            return nas, True
        if nas in self.by_mgmt_ip:
            return self.by_mgmt_ip[nas], True
        return nas, False


@dataclass(slots=True)
class SessionMergeResult:
    sessions: int = 0
    generations: int = 0
    statements: int = 0
    skipped_users: int = 0  # MAB / machine-auth names that are not people
    unresolved_sgt_names: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)
    seconds: float = 0.0


def generations(sessions: Iterable[Session]) -> list[list[Session]]:
    """Sessions oldest first, split so each MAC, IP and username occurs once per generation."""
    ordered = sorted(sessions, key=lambda s: s.timestamp_ms)
    next_gen: dict[str, int] = {}
    out: list[list[Session]] = []
    for s in ordered:
        keys = ["m" + s.mac, *("i" + ip for ip in s.ips)]
        user = normalise_username(s.username)
        if user is not None:
            keys.append("u" + user)
        g = max((next_gen.get(k, 0) for k in keys), default=0)
        for k in keys:
            next_gen[k] = g + 1
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
    """Parameters of ``merge/identity_sessions`` for one generation (keys already unique)."""
    users: list[dict[str, Any]] = []
    sgts: dict[int, dict[str, Any]] = {}
    new_switches: dict[str, dict[str, Any]] = {}
    devices: list[dict[str, Any]] = []
    assign: list[dict[str, Any]] = []
    closes: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    attach: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    ends: list[dict[str, Any]] = []
    for s in sessions:
        ts, src, end = s.timestamp_ms, s.source, s.state == "DISCONNECTED"
        ipv4 = [ip for ip in s.ips if ":" not in ip]
        first_ip = next(iter(ipv4 or s.ips), None)
        devices.append(
            {"mac": s.mac, "ts": ts, "ip": first_ip, "profile": s.endpoint_profile, "state": s.state,
             "source": src, "groups": list(s.ad_groups), "hostname": machine_name(s.username)}
        )  # fmt: skip
        user = normalise_username(s.username)
        if user is None and s.username:
            result.skipped_users += 1
        closes.append({"mac": s.mac, "ts": ts, "keep": user or ""})
        if user is not None:
            users.append({"username": user, "login": s.username, "ts": ts, "source": src})
            assign.append({"mac": s.mac, "username": user, "ts": ts, "end": end, "source": src})
        sgt = s.sgt
        if sgt is None and s.sgt_name:
            sgt = sgt_by_name.get(s.sgt_name)
            if sgt is None:
                result.unresolved_sgt_names.add(s.sgt_name)
        if sgt is not None:
            old = sgts.get(sgt)
            if old is None or (old["name"] is None and s.sgt_name):
                sgts[sgt] = {"value": sgt, "name": s.sgt_name, "ts": ts, "source": src}
            tags.append({"mac": s.mac, "sgt": sgt, "ts": ts, "source": src})
        if s.switch_id:
            switch_id, known = switches.resolve(s.switch_id)
            if not known:
                mgmt = canonical_ip(s.switch_id)
                new_switches[switch_id] = {"switch_id": switch_id, "mgmt_ip": mgmt, "ts": ts, "source": src}
            attach.append(
                {"mac": s.mac, "switch_id": switch_id, "interface": s.interface, "vlan": s.vlan, "ts": ts,
                 "source": src}
            )  # fmt: skip
        for ip in s.ips:
            result.ips.add(ip)
            row = {"ip": ip, "mac": s.mac, "ts": ts, "last": ts, "source": src}
            (ends if end else bindings).append(row)
    return {
        "users": users, "sgts": list(sgts.values()), "switches": list(new_switches.values()), "devices": devices,
        "assign": assign, "closes": closes, "tags": tags, "attach": attach, "bindings": bindings, "ends": ends,
    }  # fmt: skip


def merge_sessions(
    store: GraphStore,
    sessions: Iterable[Session],
    *,
    sgt_by_name: Mapping[str, int] | None = None,
    chunk: int = CHUNK,
) -> SessionMergeResult:
    """Merge sessions (idempotent: the same sessions twice change nothing the second time).

    ``sgt_by_name`` resolves sessions that carry only ``ctsSecurityGroup`` (the SGT name); names already in
    the graph are used too. Each statement is atomic; a failure part-way leaves whole generations applied,
    and re-sending the batch completes it without double counting anything.
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
    for gen in gens:
        for i in range(0, len(gen), chunk):
            store.write(STATEMENT, prepare(gen[i : i + chunk], switches, names, result))
            result.statements += 1
    result.seconds = time.perf_counter() - t0
    return result
