"""The incremental reader of large ``{"sessions": [...]}`` answers, fed in chunks of every size."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clarion.sources.pxgrid.jsonstream import iter_array


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


DOC = {
    "before": {"nested": [1, 2, {"sessions": ["not this one"]}]},
    "sessions": [{"macAddress": "AA:BB:CC:00:00:01", "n": 12345}, {"é": "ü", "x": [1.5e10, True, None]}, 7, "s"],
    "after": 3,
}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_items_come_out_whatever_the_chunking(size: int) -> None:
    data = json.dumps(DOC, ensure_ascii=False).encode()
    assert list(iter_array(chunked(data, size), "sessions")) == DOC["sessions"]


@pytest.mark.parametrize("text", ['{"sessions": []}', "{}", ' { "other" : 1 } ', '{"sessions":[]}  '])
def test_empty_or_missing_array(text: str) -> None:
    assert list(iter_array([text.encode()], "sessions")) == []


def test_numbers_split_across_chunks_are_not_truncated() -> None:
    assert list(iter_array([b'{"sessions": [1234', b"5678]}"], "sessions")) == [12345678]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"sessions": [1, 2', "ends early"),
        ('{"sessions": [1 2]}', "expected one of"),
        ('["sessions"]', "expected one of"),
        ('{"sessions": [{"a": tru]}', "Expecting value"),
    ],
)
def test_malformed_json_names_the_offset(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(iter_array(chunked(text.encode(), 3), "sessions"))


def test_an_oversized_item_is_refused() -> None:
    data = b'{"sessions": ["' + b"x" * 5000 + b'"]}'
    with pytest.raises(ValueError, match="larger than 1000 bytes"):
        list(iter_array(chunked(data, 100), "sessions", max_item_bytes=1000))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_values, max_size=8), st.integers(min_value=1, max_value=50))
def test_matches_json_loads(items: list[Any], size: int) -> None:
    data = json.dumps({"x": 1, "sessions": items}).encode()
    assert list(iter_array(chunked(data, size), "sessions")) == json.loads(data)["sessions"]
