"""The fake's own STOMP 1.2 parsing, written apart from the client's codec so a shared bug cannot hide."""

from __future__ import annotations


def parse(data: bytes) -> tuple[str, dict[str, str], bytes] | None:
    """One frame → (command, headers, body); None for a heart-beat; ValueError for garbage."""
    data = data.lstrip(b"\r\n")
    if not data:
        return None
    head, sep, rest = data.partition(b"\n\n")
    if not sep:
        raise ValueError("no header terminator")
    lines = head.decode().split("\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, colon, value = line.rstrip("\r").partition(":")
        if not colon:
            raise ValueError(f"bad header {line!r}")
        headers.setdefault(key, value)
    length = headers.get("content-length")
    body = rest[: int(length)] if length is not None else rest.split(b"\x00", 1)[0]
    return lines[0].rstrip("\r"), headers, body


def build(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Server frame; header values carry no extra ':' (pxgrid-util splits on every ':'), nothing after the NUL."""
    head = "".join(f"{k}:{v}\n" for k, v in headers.items())
    return f"{command}\n{head}\n".encode() + body + b"\x00"
