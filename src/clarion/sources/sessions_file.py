"""Import network sessions from a file (a NAC export): CSV with a header, or JSON (an array or {"sessions": [...]}).

All or nothing: every bad value is reported with its line (CSV) or row (JSON) and column, and one bad row
rejects the whole file, so an import is never half applied.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from clarion.sources.model import Session

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 50
MAX_FIELD_CHARS = 1024
MAX_IPS_PER_ROW = 32
COLUMNS = ("mac", "ips", "user", "sgt", "switch", "port", "vlan", "start", "profile")
EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: smaller values are epoch *seconds* or garbage
EPOCH_MS_MAX = 4_102_444_800_000  # 2100-01-01
_HEX12 = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class RowError:
    where: str  # "line 7" (CSV) or "row 3" (JSON)
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}, column {self.column!r}: {self.message}"


class SessionsFileError(ValueError):
    """The file was rejected as a whole; ``errors`` holds every problem found (the message shows the first ones)."""

    def __init__(self, source: str, errors: list[RowError], total: int | None = None) -> None:
        self.source, self.errors = source, errors
        count = total if total is not None else len(errors)
        shown = "\n  ".join(str(e) for e in errors[:10])
        more = f"\n  ... and {count - 10} more" if count > 10 else ""
        super().__init__(f"{source}: rejected, {count} error(s), nothing imported:\n  {shown}{more}")


def normalise_mac(text: str) -> str:
    """``AA-BB-CC-DD-EE-FF``, ``aabb.ccdd.eeff``, ``AABBCCDDEEFF`` -> ``aa:bb:cc:dd:ee:ff``."""
    raw = re.sub(r"[:\-.]", "", text.strip().lower())
    if not _HEX12.match(raw):
        raise ValueError(f"{text!r} is not a MAC address (e.g. aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff)")
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def _ips(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [] if value is None else str(value).split(";")
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4/IPv6 address (several go ';'-separated)") from None
    if len(out) > MAX_IPS_PER_ROW:
        raise ValueError(f"{len(out)} addresses, at most {MAX_IPS_PER_ROW} per session")
    return tuple(dict.fromkeys(out))


def _int(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not an integer {what} ({low}..{high})")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not an integer {what} ({low}..{high})") from None
    if not low <= number <= high:
        raise ValueError(f"{number} is out of range for {what} ({low}..{high})")
    return number


def _start(value: Any) -> int:
    accepted = "ISO-8601 with an offset (2024-05-01T10:15:30Z) or epoch milliseconds"
    if (isinstance(value, int | float) and not isinstance(value, bool)) or str(value).strip().isdigit():
        ms = int(value)
        if ms < EPOCH_MS_MIN:
            hint = " (looks like epoch seconds)" if ms >= EPOCH_MS_MIN // 1000 else ""
            raise ValueError(f"{value!r} is before 2000-01-01 as epoch milliseconds{hint}; expected {accepted}")
        if ms > EPOCH_MS_MAX:
            raise ValueError(f"{value!r} is after 2100 as epoch milliseconds; expected {accepted}")
        return ms
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a time; expected {accepted}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; expected {accepted}")
    return int(moment.timestamp() * 1000)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise ValueError("must be a string, not a nested object or list")
    text = str(value).strip()
    if len(text) > MAX_FIELD_CHARS:
        raise ValueError(f"longer than {MAX_FIELD_CHARS} characters")
    return text or None


_PARSERS: dict[str, Any] = {
    "mac": normalise_mac,
    "ips": _ips,
    "user": _text,
    "sgt": lambda v: _int(v, 0, 65535, "SGT"),
    "switch": _text,
    "port": _text,
    "vlan": lambda v: _int(v, 1, 4094, "VLAN"),
    "start": _start,
    "profile": _text,
}


def _row(fields: Mapping[str, Any], where: str, errors: list[RowError]) -> Session | None:
    values: dict[str, Any] = {}
    before = len(errors)
    for column in COLUMNS:
        raw = fields.get(column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if column == "mac":
                errors.append(RowError(where, column, "is required"))
            values[column] = () if column == "ips" else None
            continue
        try:
            values[column] = _PARSERS[column](raw)
        except ValueError as exc:
            errors.append(RowError(where, column, str(exc)))
    if len(errors) > before:
        return None
    return Session(
        mac=values["mac"],
        ips=values["ips"],
        username=values["user"],
        sgt=values["sgt"],
        switch_id=values["switch"],
        interface=values["port"],
        vlan=values["vlan"],
        endpoint_profile=values["profile"],
        timestamp_ms=values["start"] or 0,
        source="file",
    )


def _check_columns(names: Iterable[str], where: str) -> list[RowError]:
    return [
        RowError(where, name, f"unknown column; accepted: {', '.join(COLUMNS)}")
        for name in names
        if name not in COLUMNS
    ]


def _csv_rows(text: str, errors: list[RowError]) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            errors.append(RowError("line 1", "-", "empty file: expected a header line"))
            return
        names = [h.strip().lower() for h in header]
        errors.extend(_check_columns(names, "line 1 (header)"))
        if "mac" not in names:
            errors.append(RowError("line 1 (header)", "mac", "required column is missing"))
        if len(set(names)) != len(names):
            errors.append(RowError("line 1 (header)", "-", f"duplicate column names in {names}"))
        if errors:
            return
        for cells in reader:
            where = f"line {reader.line_num}"
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                errors.append(RowError(where, "-", f"{len(cells)} fields, the header has {len(names)}"))
                continue
            yield where, dict(zip(names, cells, strict=True))
    except csv.Error as exc:
        errors.append(RowError(f"line {reader.line_num}", "-", f"malformed CSV: {exc}"))


def _json_rows(text: str, errors: list[RowError]) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        errors.append(RowError("document", "-", f"invalid JSON: {exc}"))
        return
    rows = doc.get("sessions") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        errors.append(RowError("document", "-", 'expected a JSON array or {"sessions": [...]}'))
        return
    for index, item in enumerate(rows, start=1):
        where = f"row {index}"
        if not isinstance(item, dict):
            errors.append(RowError(where, "-", f"expected an object, got {type(item).__name__}"))
            continue
        unknown = _check_columns(item, where)
        if unknown:
            errors.extend(unknown)
            continue
        yield where, item


def parse_sessions(
    data: bytes | str,
    *,
    source: str = "<upload>",
    fmt: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_rows: int = MAX_ROWS,
) -> list[Session]:
    """Parse a whole sessions file; ``fmt`` is ``csv`` or ``json`` (default: sniffed from the first character)."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise SessionsFileError(source, [RowError("file", "-", f"{size} bytes, the limit is {max_bytes}")])
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SessionsFileError(source, [RowError(f"byte {exc.start}", "-", "not UTF-8 text")]) from None
    else:
        text = data.removeprefix("\ufeff")
    kind = fmt or ("json" if text.lstrip()[:1] in ("[", "{") else "csv")
    if kind not in ("csv", "json"):
        raise ValueError(f"fmt must be 'csv' or 'json', got {fmt!r}")
    errors: list[RowError] = []
    sessions: list[Session] = []
    total_errors = 0
    rows = _csv_rows(text, errors) if kind == "csv" else _json_rows(text, errors)
    for count, (where, fields) in enumerate(rows, start=1):
        if count > max_rows:
            errors.append(RowError(where, "-", f"more than {max_rows} sessions in one file"))
            break
        session = _row(fields, where, errors)
        if session is not None:
            sessions.append(session)
        if len(errors) > MAX_REPORTED_ERRORS:
            total_errors += len(errors) - MAX_REPORTED_ERRORS
            del errors[MAX_REPORTED_ERRORS:]
    if errors:
        raise SessionsFileError(source, errors, len(errors) + total_errors)
    return sessions


def load_sessions_file(path: Path, **kw: Any) -> list[Session]:
    """Read and parse a file; the size limit is checked before reading it into memory."""
    limit = kw.get("max_bytes", MAX_FILE_BYTES)
    size = path.stat().st_size
    if size > limit:
        raise SessionsFileError(str(path), [RowError("file", "-", f"{size} bytes, the limit is {limit}")])
    fmt = kw.pop("fmt", None) or {".csv": "csv", ".json": "json"}.get(path.suffix.lower())
    return parse_sessions(path.read_bytes(), source=str(path), fmt=fmt, **kw)
