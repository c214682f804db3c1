"""The spool keeps every batch until acknowledged, survives crashes and stays bounded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from edge_samples import sample_graph

from clarion_edge import wire
from clarion_edge.spool import Spool, SpoolError


def _size(seq: int) -> int:
    return len(wire.encode(sample_graph(seq).sealed()))


def test_batches_replay_in_seq_order_after_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for seq in (3, 4, 9):
        assert spool.put(sample_graph(seq).sealed())
    spool.ack(4)
    again = Spool(tmp_path)
    assert again.pending_seqs() == [3, 9]
    assert again.max_seq == 9
    item = again.oldest()
    assert item is not None
    seq, body = item
    assert seq == 3
    assert wire.decode(body) == sample_graph(3).sealed()
    assert again.bytes == _size(3) + _size(9)


def test_unsealed_or_out_of_order_batches_are_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="not sealed"):
        spool.put(sample_graph(1))
    spool.put(sample_graph(5).sealed())
    with pytest.raises(SpoolError, match="not above the newest spooled seq 5"):
        spool.put(sample_graph(5).sealed())


def test_half_written_and_truncated_files_are_discarded_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.put(sample_graph(1).sealed())
    spool.put(sample_graph(2).sealed())
    # a crash mid-write leaves a temp file; a torn disk write leaves a truncated batch
    (tmp_path / "pending" / ".tmp-00000000000000000003.json.999").write_bytes(b'{"schema_version":1,')
    good = (tmp_path / "pending" / "00000000000000000002.json").read_bytes()
    (tmp_path / "pending" / "00000000000000000002.json").write_bytes(good[: len(good) // 2])
    with caplog.at_level(logging.WARNING, logger="clarion_edge.spool"):
        again = Spool(tmp_path)
    assert again.pending_seqs() == [1]
    assert again.counters.discarded_corrupt == 2
    assert "discarding half-written file" in caplog.text
    assert "discarding corrupt batch" in caplog.text
    assert "00000000000000000002.json" in caplog.text
    assert sorted(p.name for p in (tmp_path / "pending").iterdir()) == ["00000000000000000001.json"]


def test_a_batch_whose_content_does_not_match_its_digest_is_discarded(tmp_path: Path) -> None:
    Spool(tmp_path).put(sample_graph(1).sealed())
    path = tmp_path / "pending" / "00000000000000000001.json"
    path.write_bytes(path.read_bytes().replace(b'"bytes":1000', b'"bytes":1001'))
    assert Spool(tmp_path).pending_seqs() == []


def test_full_spool_drops_oldest_and_counts_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, max_items=3)
    with caplog.at_level(logging.WARNING, logger="clarion_edge.spool"):
        for seq in range(1, 6):
            assert spool.put(sample_graph(seq).sealed())
    assert spool.pending_seqs() == [3, 4, 5]
    assert spool.counters.dropped_full == 2
    assert "spool FULL" in caplog.text
    assert "dropped OLDEST batch seq 1" in caplog.text
    assert len(list((tmp_path / "pending").iterdir())) == 3


def test_full_spool_by_bytes_drop_newest_refuses_the_new_batch(tmp_path: Path) -> None:
    one = _size(1)
    spool = Spool(tmp_path, max_bytes=2 * one + 10, policy="drop_newest")
    assert spool.put(sample_graph(1).sealed())
    assert spool.put(sample_graph(2).sealed())
    assert not spool.put(sample_graph(3).sealed())
    assert spool.pending_seqs() == [1, 2]
    assert spool.status()["dropped_full"] == 1
    spool.ack(1)
    assert spool.put(sample_graph(4).sealed())


def test_a_batch_larger_than_the_spool_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="larger than the whole spool"):
        Spool(tmp_path, max_bytes=100).put(sample_graph(1).sealed())


def test_rejected_batches_move_aside_with_the_reason_and_stay_bounded(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_rejected=2)
    for seq in (1, 2, 3):
        spool.put(sample_graph(seq).sealed())
        spool.reject(seq, {"status": 409, "error": f"conflict {seq}"})
    assert spool.depth == 0
    names = sorted(p.name for p in (tmp_path / "rejected").iterdir())
    assert names == [
        "00000000000000000002.json",
        "00000000000000000002.reason.json",
        "00000000000000000003.json",
        "00000000000000000003.reason.json",
    ]
    assert json.loads((tmp_path / "rejected" / "00000000000000000003.reason.json").read_text()) == {
        "status": 409,
        "error": "conflict 3",
    }
    assert Spool(tmp_path).max_seq == 3


def test_a_batch_removed_behind_the_spools_back_is_forgotten_not_looped_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(sample_graph(1).sealed())
    spool.put(sample_graph(2).sealed())
    (tmp_path / "pending" / "00000000000000000001.json").unlink()
    item = spool.oldest()
    assert item is not None
    assert item[0] == 2
    assert spool.pending_seqs() == [2]
    assert spool.bytes == len(item[1])
