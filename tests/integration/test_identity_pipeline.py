"""The pipelined bulk merge: the next chunk is prepared while one is written, with the sequential semantics."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from clarion.identity import merge_sessions
from clarion.identity import sessions as sessions_module
from clarion.identity.state import cache_for
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import Row, StoreError
from tests.helpers import T0
from tests.integration.test_identity_sessions import state, varied

pytestmark = pytest.mark.integration


class FailingStore:
    """The real store, except that the ``fail_at``-th CREATE statement fails after a pause (a lost connection
    mid-bulk); the pause lets the merger prepare and queue the next chunk before the failure is known."""

    def __init__(self, inner: FalkorDBStore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.creates = 0
        self.written: list[list[str]] = []  # MACs of each CREATE that reached the graph
        self.threads: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        self.threads.add(threading.current_thread().name)
        if statement == sessions_module.NEW_STATEMENT:
            self.creates += 1
            time.sleep(0.2)
            if self.creates == self.fail_at:
                raise StoreError("FalkorDB (merge/identity_sessions_new): connection lost")
            self.written.append([row[0] for row in (params or {})["sessions"]])
        return self.inner.write(statement, params)


def macs_in(store: FalkorDBStore) -> set[str]:
    return {r["m"] for r in store._query("MATCH (d:Device) RETURN d.uid AS m", {}, name="macs")}


def test_a_failed_chunk_stops_the_bulk_and_nothing_after_it_is_written(store: FalkorDBStore) -> None:
    bulk = varied(500, T0)  # five chunks of 100 new devices, one generation
    failing = FailingStore(store, fail_at=3)
    with pytest.raises(StoreError, match="connection lost"):
        merge_sessions(failing, bulk, chunk=100)
    assert failing.creates == 3  # chunk 4 was prepared and queued (the pause), but never sent
    assert "clarion-session-writer" in failing.threads  # the writes did run on the writer thread
    first_two = {s.mac for s in bulk[:200]}
    assert macs_in(store) == first_two
    assert [len(w) for w in failing.written] == [100, 100]
    cache = cache_for(failing)
    assert {s.mac for s in bulk if cache.peek(s.mac) is not None} == first_two  # only rows whose write succeeded
    # re-sending the whole batch completes it: the first two chunks now take the touch or merge path
    again = merge_sessions(store, bulk, chunk=100)
    assert again.created == 300
    assert macs_in(store) == {s.mac for s in bulk}


def test_pipelined_and_sequential_merges_give_the_same_graph_and_counters(
    store: FalkorDBStore, falkordb_server: FalkorDBStore
) -> None:
    bulk = varied(600, T0)
    # a second generation: 150 of the devices again, later, with another SGT and a new IP (the MERGE path)
    later = [dataclasses.replace(s, sgt=9, ips=(f"10.62.{i >> 8}.{i & 255}",), timestamp_ms=s.timestamp_ms + 10_000)
             for i, s in enumerate(bulk[:150])]  # fmt: skip
    batch: list[Session] = bulk + later
    piped = merge_sessions(store, batch, chunk=40)
    other = falkordb_server.with_graph(store.graph_name + "_one")
    other.ensure_schema()
    try:
        with pytest.MonkeyPatch.context() as mp:  # the same chunks, each written before the next is read
            writer = sessions_module.Writer
            mp.setattr(sessions_module, "Writer", lambda pipelined: writer(pipelined=False))
            whole = merge_sessions(other, batch, chunk=40)
        assert state(other) == state(store)
        assert (piped.generations, whole.generations) == (2, 2)
        assert piped.statements == whole.statements == 15 + 4  # 600 / 40 CREATE chunks, then 150 / 40 MERGE chunks
        for f in ("sessions", "created", "touched", "skipped_users", "unresolved_sgt_names", "ips"):
            assert getattr(piped, f) == getattr(whole, f), f
        assert piped.created == 600
    finally:
        other.drop_graph()
