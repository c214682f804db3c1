"""The seq survives restarts and never goes backwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from clarion_edge.seq import SeqError, SeqStore


def test_seq_strictly_increases_across_restarts(tmp_path: Path) -> None:
    s = SeqStore(tmp_path)
    assert [s.next(), s.next()] == [1, 2]
    assert list(s.reserve(3)) == [3, 4, 5]
    again = SeqStore(tmp_path)
    assert again.last == 5
    assert again.next() == 6
    assert (tmp_path / "seq").read_text() == "6\n"


def test_floor_from_spool_wins_over_an_older_state_file(tmp_path: Path) -> None:
    SeqStore(tmp_path).reserve(4)
    assert SeqStore(tmp_path, floor=10).next() == 11
    assert SeqStore(tmp_path, floor=2).next() == 12


def test_no_temp_file_is_left_behind(tmp_path: Path) -> None:
    s = SeqStore(tmp_path)
    for _ in range(5):
        s.next()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "seq").write_text("12x\n")
    with pytest.raises(SeqError, match=r"holds '12x', expected one decimal integer"):
        SeqStore(tmp_path)


def test_reserve_rejects_non_positive_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        SeqStore(tmp_path).reserve(0)
