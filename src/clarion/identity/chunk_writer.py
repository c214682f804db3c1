"""The session merge's results and its writer thread: chunks are written in order while the next is prepared.

Kept apart from ``sessions.py`` (what to write) because this is only how writes are ordered and overlapped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class SessionMergeResult:
    sessions: int = 0
    generations: int = 0
    statements: int = 0
    skipped_users: int = 0  # MAB / machine-auth names that are not people
    created: int = 0  # devices new to the graph
    touched: int = 0  # events that only re-confirmed the current identity
    unresolved_sgt_names: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)
    seconds: float = 0.0

    def add(self, other: SessionMergeResult) -> None:
        """Sum the counters of a part (a chunk) into this result."""
        self.statements += other.statements
        self.skipped_users += other.skipped_users
        self.created += other.created
        self.touched += other.touched
        self.unresolved_sgt_names |= other.unresolved_sgt_names
        self.ips |= other.ips


class Writer:
    """Applies chunks' writes in order on one thread while the caller reads and prepares the next chunk.

    The queue holds ``depth`` chunks, so at most that many are prepared ahead. Once a write fails, the
    writes queued after it are skipped and the error is raised to the caller at its next ``submit``,
    ``drain`` or on leaving the ``with`` block: nothing after a failed chunk is written. With
    ``pipelined=False`` (a batch of one chunk) every write runs at once in the caller's thread.
    """

    def __init__(self, *, pipelined: bool = True, depth: int = 1) -> None:
        self.results: list[SessionMergeResult] = []
        self.pipelined = pipelined
        #: Whether the last chunk read held only devices new to the graph (then the next is likely the same).
        self.all_new = False
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def counters(self) -> SessionMergeResult:
        """A result for one chunk's counters: written by one thread at a time (the queue orders them)."""
        part = SessionMergeResult()
        self.results.append(part)
        return part

    def submit(self, job: Callable[[], None]) -> None:
        self._raise()
        if not self.pipelined:
            job()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="clarion-session-writer", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted write is done; raise the first write's error, if any."""
        if self._thread is not None:
            self._jobs.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as e:  # handed to the caller's thread, raised there
                self._error = e
            finally:
                self._jobs.task_done()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._thread is not None:
            self._jobs.put(None)  # the chunks queued before the caller stopped are still written, in order
            self._thread.join()
            self._thread = None
        if exc_type is None:
            self._raise()
