"""A bounded, fsynced on-disk queue of sealed EdgeGraphs awaiting the server's acknowledgement.

Every batch is durable here before the first send and leaves only when the server answered
``applied`` or ``duplicate``, so kill -9, a reboot or a long server outage lose nothing that was
spooled. Layout under the spool directory::

    pending/<seq:020d>.json     sealed EdgeGraph JSON, replayed in seq order
    rejected/<seq:020d>.json    batches the server refused (409/422/400/413) ...
    rejected/<seq:020d>.reason.json   ... with the server's answer, for an operator to inspect

When full (``max_items`` or ``max_bytes``) the policy decides: ``drop_oldest`` (default) deletes
the oldest pending batches to admit the new one, because recent behaviour matters most for
segmentation and the oldest data is the most likely to be stale; ``drop_newest`` refuses the new
batch instead. Either way every dropped batch is counted and logged at WARNING.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from clarion_edge import wire
from clarion_edge.fsutil import TMP_PREFIX, atomic_write, fsync_dir

log = logging.getLogger(__name__)

FullPolicy = Literal["drop_oldest", "drop_newest"]
_NAME_RE = re.compile(r"^(\d{20})\.json$")


class SpoolError(RuntimeError):
    """A batch cannot be spooled (unsealed, too large for the spool, bad directory)."""


@dataclass
class SpoolCounters:
    """Monotonic counters exposed on the status endpoint."""

    spooled: int = 0
    acked: int = 0
    rejected: int = 0
    dropped_full: int = 0
    discarded_corrupt: int = 0


def _name(seq: int) -> str:
    return f"{seq:020d}.json"


class Spool:
    """Durable FIFO keyed by seq; safe for one producer and one consumer thread."""

    def __init__(
        self,
        directory: Path,
        *,
        max_items: int = 10_000,
        max_bytes: int = 1 << 30,
        policy: FullPolicy = "drop_oldest",
        max_rejected: int = 1_000,
    ) -> None:
        if max_items < 1 or max_bytes < 1 or max_rejected < 1:
            raise SpoolError("spool limits must be positive (max_items, max_bytes, max_rejected)")
        if policy not in ("drop_oldest", "drop_newest"):
            raise SpoolError(f"unknown spool full policy {policy!r}: expected 'drop_oldest' or 'drop_newest'")
        self.directory = Path(directory)
        self.pending_dir = self.directory / "pending"
        self.rejected_dir = self.directory / "rejected"
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.policy: FullPolicy = policy
        self.max_rejected = max_rejected
        self.counters = SpoolCounters()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._index: dict[int, int] = {}  # seq -> size in bytes, insertion order == seq order
        self._bytes = 0
        self._max_seq_seen = 0
        self.recovered_agents: dict[int, str] = {}  # seq -> agent_id of batches found at start
        for d in (self.directory, self.pending_dir, self.rejected_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- startup -----------------------------------------------------------------------------
    def _recover(self) -> None:
        """Index pending batches; discard half-written or corrupt files, saying so."""
        found: dict[int, int] = {}
        for path in sorted(self.pending_dir.iterdir()):
            if path.name.startswith(TMP_PREFIX):
                log.warning("spool: discarding half-written file %s left by a crash", path)
                self._discard(path)
                continue
            m = _NAME_RE.match(path.name)
            if m is None:
                log.warning("spool: ignoring unexpected file %s (not <seq>.json)", path)
                continue
            seq = int(m.group(1))
            data = path.read_bytes()
            try:
                graph = wire.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError, wire.WireError) as exc:
                log.error("spool: discarding corrupt batch %s (%d bytes): %s", path, len(data), exc)
                self._discard(path)
                continue
            if graph.seq != seq or graph.digest is None:
                log.error("spool: discarding batch %s: its seq %d or digest does not match its name", path, graph.seq)
                self._discard(path)
                continue
            found[seq] = len(data)
            self.recovered_agents[seq] = graph.agent_id
        for seq in sorted(found):
            self._index[seq] = found[seq]
            self._bytes += found[seq]
        rejected = [int(m.group(1)) for p in self.rejected_dir.iterdir() if (m := _NAME_RE.match(p.name))]
        self._max_seq_seen = max([0, *found, *rejected])
        if found:
            log.info(
                "spool: %d batches (%d bytes) pending from before, replaying in seq order", len(found), self._bytes
            )

    def _discard(self, path: Path) -> None:
        self.counters.discarded_corrupt += 1
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fsync_dir(path.parent)

    # -- producer ----------------------------------------------------------------------------
    @property
    def max_seq(self) -> int:
        """The highest seq this spool ever held (pending or rejected): a floor for the SeqStore."""
        return self._max_seq_seen

    def put(self, graph: wire.EdgeGraph) -> bool:
        """Durably store a sealed batch; return False if the full policy refused it."""
        if graph.digest is None:
            raise SpoolError(f"batch seq {graph.seq} is not sealed: spool only sealed EdgeGraphs")
        return self.put_bytes(graph.seq, wire.encode(graph))

    def put_bytes(self, seq: int, data: bytes) -> bool:
        size = len(data)
        if size > self.max_bytes:
            raise SpoolError(f"batch seq {seq} is {size} bytes, larger than the whole spool ({self.max_bytes} bytes)")
        with self._cond:
            if seq in self._index or seq <= self._newest_locked():
                raise SpoolError(f"seq {seq} is not above the newest spooled seq {self._newest_locked()}")
            victims: list[int] = []
            while len(self._index) - len(victims) >= self.max_items or (
                self._bytes - sum(self._index[v] for v in victims) + size > self.max_bytes
            ):
                if self.policy == "drop_newest":
                    self.counters.dropped_full += 1
                    log.warning(
                        "spool FULL (%d batches, %d bytes; limits %d, %d): dropping NEW batch seq %d "
                        "(policy drop_newest; %d dropped so far)",
                        len(self._index), self._bytes, self.max_items, self.max_bytes, seq, self.counters.dropped_full,
                    )  # fmt: skip
                    return False
                victims.append(next(s for s in self._index if s not in victims))
            for victim in victims:
                self._drop_locked(victim)
            atomic_write(self.pending_dir / _name(seq), data)
            self._index[seq] = size
            self._bytes += size
            self._max_seq_seen = max(self._max_seq_seen, seq)
            self.counters.spooled += 1
            self._cond.notify_all()
            return True

    def _newest_locked(self) -> int:
        return next(reversed(self._index), 0)

    def _drop_locked(self, seq: int) -> None:
        size = self._index.pop(seq)
        self._bytes -= size
        self.counters.dropped_full += 1
        with contextlib.suppress(FileNotFoundError):
            (self.pending_dir / _name(seq)).unlink()
        log.warning(
            "spool FULL (limits %d batches, %d bytes): dropped OLDEST batch seq %d (%d bytes) "
            "to admit a new one (policy drop_oldest; %d dropped so far)",
            self.max_items, self.max_bytes, seq, size, self.counters.dropped_full,
        )  # fmt: skip

    # -- consumer ----------------------------------------------------------------------------
    def oldest(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The oldest pending (seq, body), waiting up to ``timeout`` seconds for one to arrive."""
        with self._cond:
            if not self._index and timeout:
                self._cond.wait(timeout)
            while self._index:
                seq = next(iter(self._index))
                try:
                    return seq, (self.pending_dir / _name(seq)).read_bytes()
                except FileNotFoundError:  # removed behind our back (an operator, a full disk cleanup)
                    log.error("spool: batch seq %d vanished from %s; forgetting it", seq, self.pending_dir)
                    self._bytes -= self._index.pop(seq)
                    self.counters.discarded_corrupt += 1
            return None

    def ack(self, seq: int) -> None:
        """The server holds the batch: forget it."""
        with self._cond:
            size = self._index.pop(seq, None)
            if size is None:
                return
            self._bytes -= size
            self.counters.acked += 1
            (self.pending_dir / _name(seq)).unlink(missing_ok=True)
            fsync_dir(self.pending_dir)

    def reject(self, seq: int, reason: Mapping[str, object]) -> Path | None:
        """Move a batch the server refused to ``rejected/`` with the server's reason beside it."""
        with self._cond:
            size = self._index.pop(seq, None)
            if size is None:
                return None
            self._bytes -= size
            self.counters.rejected += 1
            target = self.rejected_dir / _name(seq)
            atomic_write(self.rejected_dir / f"{seq:020d}.reason.json", json.dumps(dict(reason), indent=2).encode())
            os.replace(self.pending_dir / _name(seq), target)
            fsync_dir(self.pending_dir)
            self._trim_rejected_locked()
        log.error("spool: server rejected batch seq %d; kept in %s: %s", seq, target, dict(reason))
        return target

    def _trim_rejected_locked(self) -> None:
        batches = sorted(p for p in self.rejected_dir.iterdir() if _NAME_RE.match(p.name))
        for path in batches[: max(0, len(batches) - self.max_rejected)]:
            path.unlink(missing_ok=True)
            path.with_name(path.name.replace(".json", ".reason.json")).unlink(missing_ok=True)
            log.warning("spool: removed old rejected batch %s (keeping the newest %d)", path.name, self.max_rejected)

    # -- status ------------------------------------------------------------------------------
    def pending_seqs(self) -> list[int]:
        with self._lock:
            return list(self._index)

    @property
    def depth(self) -> int:
        return len(self._index)

    @property
    def bytes(self) -> int:
        return self._bytes

    def wake(self) -> None:
        """Release a consumer blocked in :meth:`oldest` (used at shutdown)."""
        with self._cond:
            self._cond.notify_all()

    def status(self) -> dict[str, int]:
        c = self.counters
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "max_items": self.max_items,
            "max_bytes": self.max_bytes,
            "spooled": c.spooled,
            "acked": c.acked,
            "rejected": c.rejected,
            "dropped_full": c.dropped_full,
            "discarded_corrupt": c.discarded_corrupt,
        }
