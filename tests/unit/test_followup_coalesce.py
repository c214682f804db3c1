"""Coalescing agents' IP→MAC observations into bindings: runs of consecutive windows per holder."""

from __future__ import annotations

from clarion.ingest.followup import coalesce

W = 60_000


def test_consecutive_windows_of_one_holder_become_one_binding() -> None:
    obs = {"10.0.0.5": [(2 * W, 3 * W, "aa"), (0, W, "aa"), (W, 2 * W, "aa")]}
    assert coalesce(obs) == [["10.0.0.5", "aa", 0, 3 * W, "agent"]]


def test_a_reassigned_address_keeps_separate_non_overlapping_bindings() -> None:
    obs = {"10.0.0.5": [(0, W, "aa"), (W, 2 * W, "bb"), (2 * W, 3 * W, "aa")]}
    assert coalesce(obs) == [
        ["10.0.0.5", "aa", 0, W, "agent"],
        ["10.0.0.5", "bb", W, 2 * W, "agent"],
        ["10.0.0.5", "aa", 2 * W, 3 * W, "agent"],
    ]


def test_a_gap_in_which_the_ip_was_unseen_is_not_bridged() -> None:
    obs = {"10.0.0.5": [(0, W, "aa"), (5 * W, 6 * W, "aa")], "10.0.0.6": [(0, W, "cc")]}
    assert coalesce(obs) == [
        ["10.0.0.5", "aa", 0, W, "agent"],
        ["10.0.0.5", "aa", 5 * W, 6 * W, "agent"],
        ["10.0.0.6", "cc", 0, W, "agent"],
    ]
