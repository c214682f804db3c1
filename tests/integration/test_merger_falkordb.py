"""Exactly-once merging into the real embedded FalkorDB: the store contract, and FalkorDB's own details."""

from __future__ import annotations

import pytest

from clarion.store.falkordb_store import FalkorDBStore
from tests.integration.store_contract import *  # noqa: F403 - the shared store contract runs here

pytestmark = pytest.mark.integration


@pytest.fixture
def graph_store(store: FalkorDBStore) -> FalkorDBStore:
    return store


def test_domain_logins_take_the_fast_path() -> None:
    """``DOMAIN\\user`` rows render as JSON text (fast); only real ``\\u`` escapes need the client's path."""
    from clarion.store.falkordb_store import render_literal

    assert render_literal([["CORP\\user1", 1]]) == '[["CORP\\\\user1",1]]'
    assert "\\u" not in render_literal([["ctl\x01", 1]])  # a control character: the client's path, no escape


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'he said "hi"',
        "back\\slash",
        "new\nline\ttab",
        "é ✓ 😀",
        "ctl\x01char",
        '"src":"x"',
        "{brace}",
        "\\u0041",
        "CORP\\user1",
        "two\\\\upper",
        "slash\\\x01ctl",
    ],
)
def test_parameters_round_trip_exactly(store: FalkorDBStore, text: str) -> None:
    from clarion.store.falkordb_store import params_header

    rows = [[text, 1, None, True], ["x", 2**62, None, False]]  # the fast (json) path or its fallback
    maps = [{"t": text}]  # the client's path
    q = "UNWIND $rows AS r UNWIND $maps AS m RETURN r[0] AS a, r[1] AS b, m.t AS c"
    res = store._graph.query(params_header({"rows": rows, "maps": maps}) + q).result_set
    assert [row[0] for row in res] == [text, "x"]
    assert res[1][1] == 2**62
    assert res[0][2] == text
