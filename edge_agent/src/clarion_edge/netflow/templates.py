"""Template and options-template sets of NetFlow v9 (RFC 3954) and IPFIX (RFC 7011), and their records.

Parsing is strict about lengths: a set that lies about its size raises ``BadSetError`` and the
caller counts it, so a hostile datagram can never make the decoder read past its end or loop.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from clarion_edge.netflow.fields import VARLEN, Field

_U16x2 = struct.Struct("!HH")
_U16x3 = struct.Struct("!HHH")
_U32 = struct.Struct("!I")
#: A template with more fields than this is refused (real exporters send a few dozen).
MAX_FIELDS = 512


class BadSetError(ValueError):
    """A set or record whose lengths do not add up; ``reason`` is the stats counter to bump."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A parsed template record. ``fields`` empty means an IPFIX withdrawal of ``template_id``."""

    template_id: int
    fields: tuple[Field, ...]
    scope_count: int
    options: bool


def parse_v9_templates(payload: bytes) -> Iterator[TemplateSpec]:
    """Template records of a v9 template flowset (id 0), without its 4-byte set header."""
    off, end = 0, len(payload)
    while end - off >= 4:
        tid, count = _U16x2.unpack_from(payload, off)
        off += 4
        if count == 0 and tid == 0:
            return  # padding
        if count > MAX_FIELDS or off + 4 * count > end:
            raise BadSetError("bad_template")
        fields = _pairs(payload, off, count)
        off += 4 * count
        yield TemplateSpec(tid, fields, 0, False)


def parse_v9_options_templates(payload: bytes) -> Iterator[TemplateSpec]:
    """Options template records of a v9 options flowset (id 1); scope lengths are in bytes."""
    off, end = 0, len(payload)
    while end - off >= 6:
        tid, scope_len, opt_len = _U16x3.unpack_from(payload, off)
        off += 6
        if tid == 0 and scope_len == 0 and opt_len == 0:
            return  # padding
        if scope_len % 4 or opt_len % 4 or off + scope_len + opt_len > end:
            raise BadSetError("bad_template")
        count = (scope_len + opt_len) // 4
        if count > MAX_FIELDS:
            raise BadSetError("bad_template")
        yield TemplateSpec(tid, _pairs(payload, off, count), scope_len // 4, True)
        off += scope_len + opt_len
        if end - off < 6:
            return


def parse_ipfix_templates(payload: bytes, options: bool) -> Iterator[TemplateSpec]:
    """Template (set id 2) or options template (set id 3) records; field count 0 is a withdrawal."""
    off, end = 0, len(payload)
    head = 6 if options else 4
    while end - off >= 4:
        tid, count = _U16x2.unpack_from(payload, off)
        if count == 0:
            yield TemplateSpec(tid, (), 0, options)  # withdrawal (RFC 7011 §8.1)
            off += 4
            continue
        if end - off < head:
            raise BadSetError("bad_template")
        scope = _U16x3.unpack_from(payload, off)[2] if options else 0
        off += head
        if count > MAX_FIELDS or (options and (scope == 0 or scope > count)):
            raise BadSetError("bad_template")
        fields: list[Field] = []
        for _ in range(count):
            if off + 4 > end:
                raise BadSetError("bad_template")
            ie, length = _U16x2.unpack_from(payload, off)
            off += 4
            pen = 0
            if ie & 0x8000:
                if off + 4 > end:
                    raise BadSetError("bad_template")
                pen = _U32.unpack_from(payload, off)[0]
                off += 4
                ie &= 0x7FFF
            fields.append(Field(ie, length, pen))
        yield TemplateSpec(tid, tuple(fields), scope, options)


def _pairs(payload: bytes, off: int, count: int) -> tuple[Field, ...]:
    raw = struct.unpack_from(f"!{2 * count}H", payload, off)
    return tuple(Field(raw[i], raw[i + 1]) for i in range(0, 2 * count, 2))


def min_record_length(fields: tuple[Field, ...]) -> int:
    """The smallest a record of this template can be (a variable-length field takes at least 1 byte)."""
    return sum(1 if f.length == VARLEN else f.length for f in fields)


def iter_records(payload: bytes, fields: tuple[Field, ...]) -> Iterator[list[bytes]]:
    """Records of a data set one at a time, each as the raw bytes of every field (slow path).

    Used for options records and for templates with variable-length fields; trailing bytes
    shorter than a record are padding. A length prefix pointing past the set raises ``BadSetError``.
    """
    end = len(payload)
    minimum = min_record_length(fields)
    if minimum == 0:
        return
    off = 0
    while end - off >= minimum:
        values: list[bytes] = []
        for f in fields:
            length = f.length
            if length == VARLEN:
                if off >= end:
                    raise BadSetError("truncated")
                length = payload[off]
                off += 1
                if length == 255:
                    if off + 2 > end:
                        raise BadSetError("truncated")
                    length = (payload[off] << 8) | payload[off + 1]
                    off += 2
            if off + length > end:
                raise BadSetError("truncated")
            values.append(payload[off : off + length])
            off += length
        yield values
