"""What the consumer knows between messages: SGT names → tags, users' AD groups, counters, the merged watermark,
and a window of recently merged sessions so a backfill that repeats the stream does not re-merge.

Kept apart from the connection logic so conversion, dedup and loss detection are testable without sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from clarion.sources.model import Session, Sgacl
from clarion.sources.pxgrid.convert import (
    ConversionError,
    security_group_from_ise,
    session_from_ise,
    sgacl_from_ise,
    user_groups_from_ise,
)
from clarion.sources.pxgrid.errors import SinkError
from clarion.sources.pxgrid.sink import SessionSink, TrustSecSink

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counters:
    """Monotonic counters shown by ``GET /status``."""

    messages: int = 0  # STOMP MESSAGE frames on any topic
    received: int = 0  # session objects received (stream and REST)
    merged: int = 0  # sessions handed to the sink successfully
    duplicates: int = 0  # exact repeats dropped (backfill overlapping the stream)
    malformed: int = 0  # frames, messages or sessions that could not be parsed; skipped
    reconnects: int = 0
    backfills: int = 0
    gaps: int = 0  # sequence jumps or resets seen
    sink_errors: int = 0
    security_group_updates: int = 0
    sgacl_updates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Sequencer:
    """Loss detection per subscription: a jump in ``sequence`` or a reset (0 or going back) means lost messages."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def reset(self) -> None:
        self.last.clear()

    def check(self, sub_id: str, seq: Any) -> str | None:
        """Returns None when in order, else ``"gap"`` or ``"reset"``; messages without a sequence (ISE < 3.0) pass."""
        if not isinstance(seq, int) or isinstance(seq, bool):
            return None
        last = self.last.get(sub_id)
        self.last[sub_id] = seq
        if last is None or seq == last + 1:
            return None
        return "reset" if seq <= last else "gap"


class IdentityState:
    """Converts ISE objects and feeds the sink in batches; thread-safe counters for the status API."""

    def __init__(self, sink: SessionSink, max_batch: int = 1000, dedup_window: int = 200_000) -> None:
        self.sink = sink
        self.max_batch = max_batch
        self.dedup_window = dedup_window
        self.sgt_by_name: dict[str, int] = {}
        self.groups_by_user: dict[str, tuple[str, ...]] = {}
        self.counters = Counters()
        self.watermark_ms: int | None = None  # newest session timestamp merged so far
        self.last_message_ms: int | None = None  # wall time of the last MESSAGE received
        # hash(Session) rather than the Session: 200k remembered events cost ~20 MB, not ~100 MB; a 64-bit
        # collision inside the window (p ≈ 1e-9) would only drop one update that the next event corrects.
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._pending: list[Session] = []
        self.lock = threading.Lock()

    # -- sessions -------------------------------------------------------------------------------------------
    def add_session(self, raw: Any) -> None:
        """Convert one ISE session into the pending batch; a bad one is counted as malformed and skipped."""
        self.counters.received += 1
        try:
            session = session_from_ise(raw, self.sgt_by_name, self.groups_by_user, now_ms=int(time.time() * 1000))
        except ConversionError as exc:
            self.counters.malformed += 1
            log.warning("skipping a malformed pxGrid session: %s", exc)
            return
        if hash(session) in self._recent:
            self.counters.duplicates += 1
            return
        self._pending.append(session)
        if len(self._pending) >= self.max_batch:
            self.flush()

    def flush(self) -> None:
        """Hand the pending batch to the sink; only then advance the watermark and remember it for dedup."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self.sink.apply(batch)
        except Exception as exc:
            self.counters.sink_errors += 1
            raise SinkError(f"the session sink failed on a batch of {len(batch)}: {exc}") from exc
        with self.lock:
            self.counters.merged += len(batch)
            for s in batch:
                self._recent[hash(s)] = None
                if self.watermark_ms is None or s.timestamp_ms > self.watermark_ms:
                    self.watermark_ms = s.timestamp_ms
            while len(self._recent) > self.dedup_window:
                self._recent.popitem(last=False)

    def discard_pending(self) -> None:
        self._pending.clear()

    def on_session_message(self, doc: Any) -> bool:
        """Apply a parsed session-topic message; returns False (counted) when it is not ``{"sessions": [...]}``."""
        sessions = doc.get("sessions") if isinstance(doc, dict) else None
        if not isinstance(sessions, list):
            self.counters.malformed += 1
            log.warning("skipping a pxGrid session message without a sessions array: %.120r", doc)
            return False
        for raw in sessions:
            self.add_session(raw)
        self.flush()
        return True

    # -- TrustSec and user groups ---------------------------------------------------------------------------
    def set_security_groups(self, raws: Iterable[Any]) -> None:
        groups = self._convert_all(raws, security_group_from_ise)
        with self.lock:
            self.sgt_by_name = {g.name: g.value for g in groups}
        if isinstance(self.sink, TrustSecSink):
            self.sink.apply_security_groups(groups, [])

    def on_security_group_message(self, doc: Any) -> None:
        try:
            if not isinstance(doc, dict):
                raise ConversionError("security group message is not an object")
            group = security_group_from_ise(doc.get("securityGroup"))
        except ConversionError as exc:
            self.counters.malformed += 1
            log.warning("skipping a malformed security group message: %s", exc)
            return
        deleted = str(doc.get("operation", "")).upper() == "DELETE"
        with self.lock:
            self.counters.security_group_updates += 1
            if deleted:
                self.sgt_by_name.pop(group.name, None)
            else:
                self.sgt_by_name = {n: v for n, v in self.sgt_by_name.items() if v != group.value}
                self.sgt_by_name[group.name] = group.value
        if isinstance(self.sink, TrustSecSink):
            self.sink.apply_security_groups([] if deleted else [group], [group] if deleted else [])

    def on_sgacl_message(self, doc: Any) -> None:
        try:
            acl = sgacl_from_ise(doc)
        except ConversionError as exc:
            self.counters.malformed += 1
            log.warning("skipping a malformed SGACL message: %s", exc)
            return
        self.counters.sgacl_updates += 1
        deleted = isinstance(doc, dict) and (doc.get("deleted") is True or doc.get("isDeleted") is True)
        if isinstance(self.sink, TrustSecSink):
            self.sink.apply_sgacls([] if deleted else [acl], [acl.name] if deleted else [])

    def set_sgacls(self, raws: Iterable[Any]) -> None:
        acls: list[Sgacl] = self._convert_all(raws, sgacl_from_ise)
        if isinstance(self.sink, TrustSecSink):
            self.sink.apply_sgacls(acls, [])

    def set_user_groups(self, doc: Any, replace: bool = True) -> None:
        try:
            groups = user_groups_from_ise(doc)
        except ConversionError as exc:
            self.counters.malformed += 1
            log.warning("skipping malformed user groups: %s", exc)
            return
        with self.lock:
            self.groups_by_user = groups if replace else {**self.groups_by_user, **groups}

    # -- helpers --------------------------------------------------------------------------------------------
    def _convert_all(self, raws: Iterable[Any], fn: Any) -> list[Any]:
        out = []
        for raw in raws:
            try:
                out.append(fn(raw))
            except ConversionError as exc:
                self.counters.malformed += 1
                log.warning("skipping a malformed TrustSec object: %s", exc)
        return out
