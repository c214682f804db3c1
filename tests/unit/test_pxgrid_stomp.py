"""STOMP 1.2 frame codec: the exact bytes pxGrid exchanges, escaping, and clear errors on garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.sources.pxgrid import stomp


def test_connect_frame_is_what_the_cisco_samples_send() -> None:
    raw = stomp.encode("CONNECT", {"accept-version": "1.2", "host": "~ise-pubsub-ise32"})
    assert raw == b"CONNECT\naccept-version:1.2\nhost:~ise-pubsub-ise32\n\n\x00"


def test_subscribe_frame() -> None:
    raw = stomp.encode("SUBSCRIBE", {"destination": "/topic/com.cisco.ise.session", "id": "my-id"})
    assert raw == b"SUBSCRIBE\ndestination:/topic/com.cisco.ise.session\nid:my-id\n\n\x00"


def test_message_from_ise_with_content_length() -> None:
    body = b'{"sequence":1,"sessions":[]}'
    raw = (
        b"MESSAGE\ndestination:/topic/com.cisco.ise.session\nmessage-id:42\nsubscription:my-id\n"
        b"content-length:" + str(len(body)).encode() + b"\n\n" + body + b"\x00"
    )
    frame = stomp.decode(raw)
    assert frame == stomp.Frame(
        "MESSAGE",
        {
            "destination": "/topic/com.cisco.ise.session",
            "message-id": "42",
            "subscription": "my-id",
            "content-length": str(len(body)),
        },
        body,
    )


def test_body_may_contain_nul_when_content_length_is_given() -> None:
    frame = stomp.decode(b"MESSAGE\ncontent-length:3\n\na\x00b\x00")
    assert frame is not None
    assert frame.body == b"a\x00b"


def test_heartbeat_is_none_and_crlf_frames_parse() -> None:
    assert stomp.decode(b"\n") is None
    assert stomp.decode(b"\r\n\r\n") is None
    frame = stomp.decode(b"CONNECTED\r\nversion:1.2\r\n\r\n\x00")
    assert frame == stomp.Frame("CONNECTED", {"version": "1.2"}, b"")


def test_escaped_header_values_round_trip_and_first_repeat_wins() -> None:
    raw = stomp.encode("SEND", {"destination": "/t", "x": "a:b\nc\\d"}, b"{}")
    assert b"x:a\\cb\\nc\\\\d\n" in raw
    frame = stomp.decode(raw)
    assert frame is not None
    assert frame.headers["x"] == "a:b\nc\\d"
    assert frame.headers["content-length"] == "2"
    repeated = stomp.decode(b"MESSAGE\nfoo:1\nfoo:2\n\n\x00")
    assert repeated is not None
    assert repeated.headers["foo"] == "1"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"MESSAGE\nfoo:1\n", "no blank line"),
        (b"MESSAGE\nfoo\n\nbody\x00", "has no ':'"),
        (b"message\n\n\x00", "no valid command"),
        (b"MESSAGE\n\nbody-without-nul", "not NUL-terminated"),
        (b"MESSAGE\ncontent-length:10\n\nshort\x00", "shorter than content-length"),
        (b"MESSAGE\ncontent-length:-1\n\n\x00", "not a non-negative integer"),
        (b"MESSAGE\nx:\\t\n\n\x00", "undefined escape"),
        (b"MESSAGE\nx:\xff\n\n\x00", "not UTF-8"),
    ],
)
def test_garbage_gives_a_clear_error(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stomp.decode(raw)


header_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(
    st.dictionaries(header_text.filter(bool), header_text, max_size=5),
    st.binary(max_size=200),
)
def test_any_frame_round_trips(headers: dict[str, str], body: bytes) -> None:
    headers.pop("content-length", None)
    frame = stomp.decode(stomp.encode("MESSAGE", headers, body))
    assert frame is not None
    assert frame.command == "MESSAGE"
    assert frame.body == body
    for k, v in headers.items():
        assert frame.headers[k] == v
