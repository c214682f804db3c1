"""The Neo4j Browser examples also run, with the expected answers, on the embedded store."""

from __future__ import annotations

import pytest

from clarion.ingest.merger import merge
from clarion.store.falkordb_store import FalkorDBStore
from tests.helpers import mac, small_graph

pytestmark = pytest.mark.integration


def test_examples_answer_on_real_data(store: FalkorDBStore) -> None:
    merge(store, small_graph())
    top = store.read("examples/top_talkers")
    assert (top[0]["src"], top[0]["dst"], top[0]["bytes"]) == (mac(1), "198.51.100.7", 5000)
    cell = store.read("examples/sgt_pair_devices", {"src_sgt": 4, "dst_sgt": 10})
    assert [(r["src"], r["dst"], r["port"], r["bytes"]) for r in cell] == [(mac(1), mac(2), 9100, 1000)]
    hood = store.read("examples/device_neighbourhood", {"mac": mac(2)})
    assert {r["peer"]["uid"] for r in hood} == {mac(1), mac(3)}
    unknown = store.read("examples/unknown_sgt_servers")
    assert unknown == []  # the only SGT-less local device (mac 3) is a client, not a server
