"""The per-agent batch sequence number, strictly increasing across restarts.

The server applies each (agent_id, seq) once: reusing a seq after a restart would make a new
batch look like a conflicting replay (409) and lose it. So every allocation is persisted
(fsynced, atomically renamed) before the seq is used; a crash may skip numbers, never reuse them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from clarion_edge.fsutil import atomic_write

log = logging.getLogger(__name__)

MAX_SEQ = 2**63 - 1
SEQ_FILE = "seq"


class SeqError(RuntimeError):
    """The seq state file is unreadable or the sequence is exhausted."""


class SeqStore:
    """Hands out seq numbers; ``floor`` lets the spool raise the start above any seq it still holds."""

    def __init__(self, state_dir: Path, *, floor: int = 0) -> None:
        self._path = Path(state_dir) / SEQ_FILE
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last = max(self._load(), floor)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last(self) -> int:
        """The highest seq handed out so far (0 before the first)."""
        return self._last

    def _load(self) -> int:
        try:
            text = self._path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise SeqError(f"cannot read the seq state file {self._path}: {exc}") from exc
        if not text.isdigit() or not 0 <= int(text) <= MAX_SEQ:
            raise SeqError(
                f"the seq state file {self._path} holds {text[:40]!r}, expected one decimal integer "
                f"0..{MAX_SEQ}; fix or delete it only if the server has never seen this agent_id"
            )
        return int(text)

    def reserve(self, count: int = 1) -> range:
        """Persist and return ``count`` consecutive fresh seqs."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._lock:
            first = self._last + 1
            last = self._last + count
            if last > MAX_SEQ:
                raise SeqError(f"seq exhausted: {last} exceeds {MAX_SEQ}")
            atomic_write(self._path, f"{last}\n".encode("ascii"))
            self._last = last
            return range(first, last + 1)

    def next(self) -> int:
        return self.reserve(1)[0]
