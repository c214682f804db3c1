"""Spool + sender against a real HTTP server that goes away mid-run: nothing lost, nothing doubled."""

from __future__ import annotations

import time
from pathlib import Path

from edge_samples import sample_graph
from edge_test_server import GraphServer

from clarion_edge.sender import Sender
from clarion_edge.seq import SeqStore
from clarion_edge.shipper import Shipper
from clarion_edge.spool import Spool


def _wait(cond: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _shipper(tmp_path: Path, url: str) -> Shipper:
    spool = Spool(tmp_path / "spool")
    sender = Sender(url, "tok-edge-1", timeout=2, retries=1, backoff_base=0.05, backoff_max=0.2)
    return Shipper(spool, SeqStore(tmp_path / "spool", floor=spool.max_seq), sender, pause_min=0.05, pause_max=0.2)


def test_server_outage_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    server = GraphServer().start()
    port = server.port
    shipper = _shipper(tmp_path, server.url)
    shipper.start()
    try:
        shipper.submit([sample_graph(1, bytes_=b) for b in range(1, 11)])
        _wait(lambda: shipper.spool.depth == 0)
        server.stop()  # the server goes away
        shipper.submit([sample_graph(1, bytes_=b) for b in range(11, 31)])
        _wait(lambda: shipper.last_result is not None and shipper.last_result["outcome"] == "unavailable")
        assert shipper.spool.depth == 20
        back = GraphServer(port=port)
        back.ledger = server.ledger  # same database behind the restarted server
        back.start()
        try:
            _wait(lambda: shipper.spool.depth == 0)
        finally:
            back.stop()
    finally:
        shipper.stop()
    ledger = server.ledger
    assert sorted(seq for _, seq in ledger.applied) == list(range(1, 31))
    assert ledger.totals()["bytes"] == sum(range(1, 31))
    assert ledger.conflicts == 0


def test_restart_after_unacknowledged_send_is_a_duplicate_not_a_double(tmp_path: Path) -> None:
    server = GraphServer().start()
    try:
        first = _shipper(tmp_path, server.url)
        first.submit([sample_graph(1, bytes_=5), sample_graph(1, bytes_=6)])
        # the server applied seq 1 but the agent died before removing it from the spool
        assert first.sender.send_bytes(first.spool.oldest()[1]).outcome == "applied"  # type: ignore[index]
        first.sender.close()
        again = _shipper(tmp_path, server.url)
        assert again.spool.pending_seqs() == [1, 2]
        again.start()
        _wait(lambda: again.spool.depth == 0)
        again.stop()
        assert again.sent_duplicate == 1
        assert again.sent_applied == 1
        assert server.ledger.totals()["bytes"] == 11
        assert again.submit([sample_graph(1)]) == [3]
    finally:
        server.stop()


def test_conflicting_batch_goes_to_rejected_and_the_queue_moves_on(tmp_path: Path) -> None:
    server = GraphServer().start()
    try:
        server.handle("Bearer tok-edge-1", __import__("clarion_edge.wire").wire.encode(sample_graph(1).sealed()))
        shipper = _shipper(tmp_path, server.url)
        shipper.submit([sample_graph(1, bytes_=77), sample_graph(1, bytes_=78)])
        shipper.start()
        _wait(lambda: shipper.spool.depth == 0)
        shipper.stop()
        assert shipper.spool.counters.rejected == 1
        assert (tmp_path / "spool" / "rejected" / "00000000000000000001.reason.json").exists()
        assert sorted(server.ledger.applied) == [("edge-1", 1), ("edge-1", 2)]
        assert server.ledger.conflicts == 1
    finally:
        server.stop()
