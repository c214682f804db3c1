"""The vectorised set walk against a set-by-set reference, on chains of every length and broken ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from clarion_edge.netflow import bulk


def _reference(buf: bytes, start: list[int], end: list[int]) -> tuple[list[int], list[bool]]:
    """Set header offsets and irregular messages, walking one set at a time (at most MAX_ROUNDS per message)."""
    sets, irregular = [], [False] * len(start)
    for m, (p, e) in enumerate(zip(start, end, strict=True)):
        rounds = 0
        while e - p >= 4:
            length = (buf[p + 2] << 8) | buf[p + 3]
            if rounds == bulk.MAX_ROUNDS or length < 4 or p + length > e:
                irregular[m] = True
                break
            sets.append(p)
            p += length
            rounds += 1
    return sets, irregular


def _messages(rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        d = bytearray(rng.randint(0, 400))
        off = 0
        while off + 4 <= len(d):  # mostly well-formed chains, some lengths that lie
            length = rng.choice([4, 4, 8, 12, rng.randint(0, 48), rng.randint(0, 3), 0xFFFF])
            d[off + 2], d[off + 3] = length >> 8, length & 0xFF
            off += max(length, 1)
        out.append(bytes(d))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_walk_finds_the_sets_and_irregular_messages_of_a_set_by_set_walk(seed: int) -> None:
    rng = random.Random(seed)
    datas = _messages(rng, rng.choice([0, 1, 5, 30, 120]))  # below and above the Python tail threshold
    sizes = np.array([len(d) for d in datas], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if datas else sizes
    joined = b"".join(datas)
    start = base + np.minimum(sizes, rng.choice([0, 2, 4]))
    end = base + sizes
    table = bulk.walk_sets(np.frombuffer(joined, dtype=np.uint8), start, end)
    sets, irregular = _reference(joined, start.tolist(), end.tolist())
    assert table.off.tolist() == sets
    assert table.irregular.tolist() == irregular
    assert table.msg.tolist() == [int(np.searchsorted(start, s, side="right")) - 1 for s in sets]
    assert (table.set_id << 16 | table.length).tolist() == [int.from_bytes(joined[s : s + 4], "big") for s in sets]


def test_more_sets_than_rounds_sends_the_message_to_the_sequential_walk() -> None:
    many = b"".join(b"\x01\x00\x00\x04" for _ in range(bulk.MAX_ROUNDS + 1))
    exact = many[:-4]
    joined = many + exact
    start = np.array([0, len(many)], dtype=np.int64)
    end = np.array([len(many), len(joined)], dtype=np.int64)
    table = bulk.walk_sets(np.frombuffer(joined, dtype=np.uint8), start, end)
    assert table.irregular.tolist() == [True, False]
    assert table.first.tolist() == [0, bulk.MAX_ROUNDS, 2 * bulk.MAX_ROUNDS]
