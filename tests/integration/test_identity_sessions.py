"""The three session paths (new devices, re-confirmations, changes) give the same graph as one-by-one merges."""

from __future__ import annotations

from typing import Any

import pytest

from clarion.identity import merge_sessions
from clarion.identity import sessions as sessions_module
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import BatchConflictError
from tests.helpers import T0

pytestmark = pytest.mark.integration

MAC = "02:00:00:00:0e:01"


def state(store: FalkorDBStore) -> list[Any]:
    rows = store._query(
        "MATCH (n) OPTIONAL MATCH (n)-[r]->(m) RETURN labels(n), properties(n), type(r), properties(r), properties(m)",
        {}, name="dump",
    )  # fmt: skip
    return sorted(
        repr([(k, sorted(v.items()) if isinstance(v, dict) else v) for k, v in sorted(r.items())]) for r in rows
    )


def alice(ts: int, **kw: Any) -> Session:
    base: dict[str, Any] = {
        "mac": MAC, "ips": ("10.60.0.5",), "username": "alice", "sgt": 4, "switch_id": "sw9",
        "interface": "Gi1/0/5", "vlan": 30, "endpoint_profile": "Windows", "timestamp_ms": ts,
    }  # fmt: skip
    base.update(kw)
    return Session(**base)


def test_a_reconfirming_event_only_moves_the_confirmation_time(store: FalkorDBStore) -> None:
    first = merge_sessions(store, [alice(T0)])
    assert (first.created, first.touched) == (1, 0)
    before = state(store)
    again = merge_sessions(store, [alice(T0 + 60_000)])
    assert (again.created, again.touched) == (0, 1)
    after = state(store)
    changed = set(after) ^ set(before)
    # only the device node changed: its 3 dump rows (ASSIGNED_TO, HAS_SGT, CONNECTED_TO), old and new version
    assert len(changed) == 2 * 3
    assert all(row.startswith("[('labels(n)', ['Device'])") for row in changed)
    d = store._query("MATCH (d:Device {uid: $m}) RETURN d", {"m": MAC}, name="d")[0]["d"]
    assert (d["identity_ts"], d["last_seen"], d["first_seen"]) == (T0 + 60_000, T0 + 60_000, T0)
    # a change takes the full path: a new IP closes nothing else but opens a second binding interval
    moved = merge_sessions(store, [alice(T0 + 120_000, ips=("10.60.0.6",))])
    assert (moved.created, moved.touched) == (0, 0)
    ips = store._query("MATCH (b:IpBinding {mac: $m}) RETURN b.ip AS ip, b.since AS s", {"m": MAC}, name="b")
    assert sorted((r["ip"], r["s"]) for r in ips) == [("10.60.0.5", T0), ("10.60.0.6", T0 + 120_000)]


def test_create_path_and_merge_path_build_the_same_graph(store: FalkorDBStore, falkordb_server: FalkorDBStore) -> None:
    events = [
        alice(T0),
        Session(mac="02:00:00:00:0e:02", ips=("10.60.0.7",), username="bob", sgt=5, timestamp_ms=T0 + 1),
        Session(mac="02:00:00:00:0e:03", username="02:00:00:00:0e:03", state="DISCONNECTED", timestamp_ms=T0 + 2),
    ]
    merge_sessions(store, events)  # all new: CREATE path
    other = falkordb_server.with_graph(store.graph_name + "_merge")
    other.ensure_schema()
    try:
        # pretend every device exists (with an unknown identity): everything takes the MERGE path
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sessions_module, "read_confirmed", lambda st, macs: dict.fromkeys(macs))
            mp.setattr(sessions_module, "read_current", lambda st, macs: {m: {"ts": None} for m in macs})
            result = merge_sessions(other, events)
        assert (result.created, result.touched) == (0, 0)
        assert state(other) == state(store)
    finally:
        other.drop_graph()


def test_a_device_created_concurrently_falls_back_to_merge(
    store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge_sessions(store, [alice(T0)])
    with pytest.raises(BatchConflictError):  # the CREATE path refuses a device that exists
        store.write(sessions_module.NEW_STATEMENT, {
            "users": [], "sgts": [], "switches": [], "bindings": [],
            "sessions": [[MAC, T0, "ise", "STARTED", False, None, None, [], None, None, None, None, None, None]],
        })  # fmt: skip
    monkeypatch.setattr(sessions_module, "read_confirmed", lambda st, macs: {})  # the read raced with a creator
    result = merge_sessions(store, [alice(T0 + 5, sgt=8)])
    assert (result.created, result.statements) == (0, 2)  # the CREATE was refused, then merged ...
    d = store._query("MATCH (d:Device {uid: $m}) RETURN d.sgt AS sgt", {"m": MAC}, name="d")
    assert [r["sgt"] for r in d] == [8]  # ... and merged, exactly once


def varied(n: int, ts: int) -> list[Session]:
    """Sessions with every optional part present or absent: MAB, no SGT, unknown and known switches, IPv6."""
    out = []
    for i in range(n):
        out.append(
            Session(
                mac=f"02:00:00:01:{i >> 8:02x}:{i & 255:02x}", ips=(f"10.61.{i >> 8}.{i & 255}",) if i % 5 else (),
                username=None if i % 7 == 0 else (f"host/pc{i}.corp" if i % 11 == 0 else f"CORP\\user{i % 40}"),
                sgt=None if i % 6 == 0 else 4 + i % 3, switch_id=None if i % 9 == 0 else f"10.9.0.{i % 4}",
                interface=f"Gi1/0/{i % 48}", vlan=10 + i % 3, endpoint_profile=None if i % 4 else "Printer",
                state="DISCONNECTED" if i % 13 == 0 else "STARTED", timestamp_ms=ts + i, source="ise",
            )
        )  # fmt: skip
    return out


def test_falkordb_create_variant_builds_what_the_merge_path_builds(
    store: FalkorDBStore, falkordb_server: FalkorDBStore
) -> None:
    """The FalkorDB CREATE statement (one pass, OPTIONAL MATCH + FOREACH) against the shared MERGE statement."""
    known = varied(3, T0)  # their switches become known switches for the next batch
    merge_sessions(store, known)
    created = merge_sessions(store, varied(300, T0 + 1_000)[3:])
    assert created.created == 297
    other = falkordb_server.with_graph(store.graph_name + "_merge")
    other.ensure_schema()
    try:
        merge_sessions(other, known)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sessions_module, "read_confirmed", lambda st, macs: dict.fromkeys(macs))
            mp.setattr(sessions_module, "read_current", lambda st, macs: {m: {"ts": None} for m in macs})
            merged = merge_sessions(other, varied(300, T0 + 1_000)[3:])
        assert (merged.created, merged.touched) == (0, 0)
        assert state(other) == state(store)
        edges = store._query("MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n", {}, name="n")
        counts = {r["t"]: r["n"] for r in edges}
        # 300 sessions: 257 with a person or MAB-less user, 250 with an SGT, 266 on a switch (exact from varied)
        users = sum(1 for s in varied(300, T0) if s.username and not s.username.startswith("host/"))
        sgts = sum(1 for s in varied(300, T0) if s.sgt is not None)
        ports = sum(1 for s in varied(300, T0) if s.switch_id is not None)
        assert counts == {"ASSIGNED_TO": users, "HAS_SGT": sgts, "CONNECTED_TO": ports}
    finally:
        other.drop_graph()


def test_a_cached_reconfirmation_is_refused_when_another_writer_moved_the_device(store: FalkorDBStore) -> None:
    """The touch without a read is guarded by identity_ts: a change written by another process wins."""
    merge_sessions(store, [alice(T0)])
    # another API replica (no shared cache) moves alice's device to bob at T0 + 10
    store._query("MATCH (d:Device {uid: $m}) SET d.identity_ts = $t", {"m": MAC, "t": T0 + 10}, name="other")
    store._query("MATCH (d:Device {uid: $m})-[a:ASSIGNED_TO]->() SET a.until = $t", {"m": MAC, "t": T0 + 10}, name="o")
    again = merge_sessions(store, [alice(T0 + 20)])
    # the cache said "unchanged" but the graph no longer agrees: the event was classified again and merged
    assert again.touched == 0
    rows = store._query(
        "MATCH (d:Device {uid: $m})-[a:ASSIGNED_TO]->(u:User) RETURN d.identity_ts AS ts, a.until AS until",
        {"m": MAC}, name="a",
    )  # fmt: skip
    assert rows == [{"ts": T0 + 20, "until": None}]
