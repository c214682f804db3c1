"""A small STOMP 1.2 frame codec for pxGrid's pubsub (frames travel as binary WebSocket messages).

Pure bytes in, bytes out: the WebSocket transport lives in ``pubsub.py``, so this is unit-testable alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FRAME_BYTES = 64 * 1024 * 1024
_ESC = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESC = {"\\": "\\", "n": "\n", "r": "\r", "c": ":"}


@dataclass(frozen=True, slots=True)
class Frame:
    """One STOMP frame; header names are kept as sent, the first occurrence of a repeated header wins."""

    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _escape(value: str) -> str:
    return "".join(_ESC.get(c, c) for c in value)


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1 : i + 2]
            if nxt not in _UNESC:
                raise ValueError(f"STOMP header has an undefined escape sequence \\{nxt} in {value!r}")
            out.append(_UNESC[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def encode(command: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """Serialise a frame; CONNECT headers are not escaped (STOMP 1.2 §Value Encoding), others are."""
    lines = [command]
    for name, value in (headers or {}).items():
        if command == "CONNECT":
            lines.append(f"{name}:{value}")
        else:
            lines.append(f"{_escape(name)}:{_escape(value)}")
    if body and "content-length" not in (headers or {}):
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\x00"


def decode(data: bytes) -> Frame | None:
    """Parse one frame; a heart-beat (only EOLs) gives None. Raises ``ValueError`` saying what is wrong."""
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"STOMP frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    stripped = data.lstrip(b"\r\n")
    if not stripped:
        return None
    head_end = stripped.find(b"\n\n")
    sep = 2
    crlf = stripped.find(b"\r\n\r\n")
    if crlf != -1 and (head_end == -1 or crlf < head_end):
        head_end, sep = crlf, 4
    if head_end == -1:
        raise ValueError("STOMP frame has no blank line between headers and body")
    try:
        head = stripped[:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"STOMP frame headers are not UTF-8 (byte {exc.start})") from exc
    lines = head.replace("\r\n", "\n").split("\n")
    command = lines[0].strip()
    if not command.isalpha() or not command.isupper():
        raise ValueError(f"STOMP frame has no valid command, got {command[:40]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"STOMP header line {line[:80]!r} has no ':'")
        if command != "CONNECTED":
            name, value = _unescape(name), _unescape(value)
        headers.setdefault(name, value)
    rest = stripped[head_end + sep :]
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ValueError(f"STOMP content-length {length!r} is not a non-negative integer")
        n = int(length)
        if len(rest) < n + 1 or rest[n : n + 1] != b"\x00":
            raise ValueError(f"STOMP body shorter than content-length {n} or not NUL-terminated")
        body = rest[:n]
    else:
        end = rest.find(b"\x00")
        if end == -1:
            raise ValueError("STOMP frame body is not NUL-terminated")
        body = rest[:end]
    return Frame(command, headers, body)
