"""The FalkorDB variants of the session statements build exactly the graph the shared (Neo4j) text builds.

Both texts run on the embedded FalkorDB (the Neo4j text is plain Cypher FalkorDB also runs), fed the same
stream: new devices, re-confirmations, IP moves, SGT changes, other users, disconnects, late and duplicate
events in one batch, MAB and machine authentication, devices without a switch.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from clarion.identity import merge_sessions
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from tests.helpers import T0
from tests.integration.test_identity_sessions import state

pytestmark = pytest.mark.integration


def stream(seed: int, devices: int, count: int) -> list[list[Session]]:
    rng = random.Random(seed)
    current: dict[int, Session] = {}
    batches: list[list[Session]] = []
    ts = T0
    for _ in range(count // 50):
        batch = []
        for _ in range(50):
            i = rng.randrange(devices)
            ts += rng.randrange(1, 1_000)
            s = current.get(i) or Session(
                mac=f"02:00:00:02:00:{i:02x}", ips=(f"10.62.0.{i}",), username=rng.choice([None, f"u{i % 5}"]),
                sgt=rng.choice([None, 4, 5]), switch_id=rng.choice([None, "10.9.1.1", "10.9.1.2"]),
                interface=f"Gi1/0/{i}", vlan=20, endpoint_profile=rng.choice([None, "Phone"]), timestamp_ms=ts,
                source="ise",
            )  # fmt: skip
            x = rng.random()
            if x < 0.15:
                s = dataclasses.replace(s, ips=(f"10.62.{rng.randrange(1, 3)}.{i}",))
            elif x < 0.3:
                s = dataclasses.replace(s, sgt=rng.choice([4, 5, 6]))
            elif x < 0.4:
                s = dataclasses.replace(s, username=rng.choice([f"u{rng.randrange(5)}", "host/pc1.corp", None]))
            elif x < 0.5:
                s = dataclasses.replace(s, state="DISCONNECTED")
            elif x < 0.6:
                s = dataclasses.replace(s, switch_id=rng.choice(["10.9.1.1", "10.9.1.3"]), interface="Gi2/0/1")
            else:
                s = dataclasses.replace(s, state="STARTED")
            late = rng.random() < 0.1  # an older event arriving late
            s = dataclasses.replace(s, timestamp_ms=ts - 5_000 if late else ts)
            if not late:
                current[i] = s
            batch.append(s)
        batches.append(batch)
    return batches


@pytest.mark.parametrize("seed", [1, 2])
def test_falkordb_variants_match_the_shared_statements(
    store: FalkorDBStore, falkordb_server: FalkorDBStore, seed: int
) -> None:
    shared = falkordb_server.with_graph(store.graph_name + "_shared")
    shared.ensure_schema()
    shared.dialect = "neo4j"  # type: ignore[misc]  # the shared text, run by FalkorDB
    try:
        for batch in stream(seed, devices=40, count=1_500):
            mine, theirs = merge_sessions(store, batch), merge_sessions(shared, batch)
            assert (mine.created, mine.touched) == (theirs.created, theirs.touched)
        assert state(store) == state(shared)
        counts = store._query("MATCH (d:Device) RETURN count(d) AS n", {}, name="n")
        assert counts == [{"n": 40}]
    finally:
        shared.drop_graph()
