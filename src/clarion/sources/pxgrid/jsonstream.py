"""Incremental reader for ``{"sessions": [ {...}, {...} ]}`` answers that can run to hundreds of megabytes.

Yields the elements of one top-level array as they arrive, holding one element in memory at a time; other top-level
members are decoded whole. Built on the C JSON scanner (``raw_decode``), so no extra dependency.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

_WS = " \t\r\n"
_DECODER = json.JSONDecoder()


class _Buffer:
    def __init__(self, chunks: Iterable[bytes], max_item_bytes: int) -> None:
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.eof = False
        self.max_item = max_item_bytes
        self.consumed = 0  # characters dropped from the front, for error offsets

    def more(self) -> bool:
        if self.eof:
            return False
        for chunk in self._chunks:
            if chunk:
                if self.pos > 65536:
                    self.consumed += self.pos
                    self.text, self.pos = self.text[self.pos :], 0
                self.text += self._utf8.decode(chunk)
                return True
        self.text += self._utf8.decode(b"", final=True)
        self.eof = True
        return False

    def peek(self) -> str:
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                raise ValueError(f"JSON ends early at character {self.consumed + self.pos}")

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c not in chars:
            raise ValueError(f"JSON: expected one of {chars!r} at character {self.consumed + self.pos}, got {c!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.text) - self.pos > self.max_item:
                    raise ValueError(
                        f"JSON value at character {self.consumed + self.pos} is larger than {self.max_item} bytes"
                    ) from exc
                if not self.more():
                    raise ValueError(f"JSON: {exc.msg} at character {self.consumed + exc.pos}") from exc
                continue
            # A number cut by a chunk boundary ("12" | "34", "0" | ".5", "1" | "e3") is only complete once a
            # character that cannot continue it follows.
            cut = end == len(self.text) or self.text[end] in ".eE+-"
            if cut and isinstance(obj, int | float) and not isinstance(obj, bool) and self.more():
                continue
            self.pos = end
            return obj


def iter_array(chunks: Iterable[bytes], key: str, max_item_bytes: int = 16 * 1024 * 1024) -> Iterator[Any]:
    """Yield each element of ``doc[key]`` where ``doc`` is the JSON object spread over ``chunks``.

    Raises ``ValueError`` with the character offset on malformed JSON; a missing ``key`` yields nothing.
    """
    buf = _Buffer(chunks, max_item_bytes)
    buf.expect("{")
    if buf.peek() == "}":
        return
    while True:
        name = buf.value()
        if not isinstance(name, str):
            raise ValueError(f"JSON: object key expected at character {buf.consumed + buf.pos}")
        buf.expect(":")
        if name == key and buf.peek() == "[":
            buf.pos += 1
            if buf.peek() == "]":
                buf.pos += 1
            else:
                while True:
                    yield buf.value()
                    if buf.expect(",]") == "]":
                        break
        else:
            buf.value()
        if buf.expect(",}") == "}":
            return
