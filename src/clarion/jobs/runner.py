"""In-process job runner: jobs queue in one thread; heavy compute runs in a long-lived worker process.

The worker process is long-lived (imports of the analytics stack are paid once, and heavy
compute never holds the API's GIL), reports progress through a queue, and is killed with its
whole process group when a job times out, so no orphaned workers keep burning CPU. Job state
lives in memory: the API is the only reader.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

_progress_queue: Any = None  # set in the worker by _init_worker


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclass
class Job:
    id: str
    kind: str
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    message: str = "queued"
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    started_ms: int | None = None
    finished_ms: int | None = None

    def report(self, fraction: float, message: str) -> None:
        self.progress = max(self.progress, min(1.0, max(0.0, fraction)))
        self.message = message


def _init_worker(queue: Any) -> None:
    global _progress_queue
    _progress_queue = queue
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its own process group, so a timeout can kill it with every child it spawned


@dataclass(frozen=True)
class WorkerProgress:
    """A picklable progress callback for the worker process, mapped onto [lo, hi] of the job."""

    job_id: str
    lo: float = 0.0
    hi: float = 1.0

    def __call__(self, fraction: float, message: str) -> None:
        if _progress_queue is not None:
            _progress_queue.put((self.job_id, self.lo + (self.hi - self.lo) * float(fraction), str(message)))


class JobRunner:
    """Runs jobs one at a time; ``compute`` callables given to ``run_in_worker`` go to the worker process."""

    def __init__(self, timeout_s: float = 1800.0, keep: int = 200) -> None:
        self.timeout_s = timeout_s
        self.keep = keep
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ctx = mp.get_context("spawn")
        self._queue = self._ctx.Queue()
        self._pool: ProcessPoolExecutor | None = None
        self._orchestrator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clarion-jobs")
        self._listener = threading.Thread(target=self._listen, name="clarion-job-progress", daemon=True)
        self._closed = False
        self._listener.start()

    def submit(self, kind: str, work: Callable[[Job, JobRunner], dict[str, Any]]) -> Job:
        """Queue ``work(job, runner)``; it runs in the jobs thread and may call ``run_in_worker``."""
        job = Job(id=uuid.uuid4().hex, kind=kind)
        with self._lock:
            self.jobs[job.id] = job
            self._trim()
        self._orchestrator.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def run_in_worker(
        self, job: Job, fn: Callable[..., Any], *args: Any, span: tuple[float, float] = (0.0, 1.0)
    ) -> Any:
        """Run ``fn(*args, progress)`` in the worker process (progress mapped onto ``span``); kill it on timeout."""
        pool = self._ensure_pool()
        future: Future[Any] = pool.submit(fn, *args, WorkerProgress(job.id, *span))
        remaining = self.timeout_s - (time.time() - (job.started_ms or 0) / 1000)
        try:
            return future.result(timeout=max(1.0, remaining))
        except FutureTimeout:
            self._kill_pool()
            raise TimeoutError(f"job {job.kind} exceeded {self.timeout_s:.0f} s and was stopped") from None

    def close(self) -> None:
        self._closed = True
        self._orchestrator.shutdown(wait=False, cancel_futures=True)
        self._kill_pool()
        with contextlib.suppress(Exception):
            self._queue.put(None)

    # -- internals --------------------------------------------------------------------------
    def _run(self, job: Job, work: Callable[[Job, JobRunner], dict[str, Any]]) -> None:
        job.state, job.started_ms, job.message = JobState.RUNNING, int(time.time() * 1000), "started"
        try:
            job.result = work(job, self)
            job.state, job.progress = JobState.SUCCEEDED, 1.0
        except TimeoutError as e:
            job.state, job.error = JobState.TIMED_OUT, str(e)
        except Exception as e:
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.state, job.error = JobState.FAILED, f"{type(e).__name__}: {e}"
        finally:
            job.finished_ms = int(time.time() * 1000)
            if job.state is not JobState.SUCCEEDED:
                job.message = job.error or job.message

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._ctx, initializer=_init_worker, initargs=(self._queue,)
            )
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, OSError):
                proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _listen(self) -> None:
        while not self._closed:
            try:
                item = self._queue.get()
            except (EOFError, OSError):
                return
            if item is None:
                return
            job_id, fraction, message = item
            job = self.jobs.get(job_id)
            if job is not None and job.state is JobState.RUNNING:
                job.report(fraction, message)

    def _trim(self) -> None:
        done = [j for j in self.jobs.values() if j.finished_ms is not None]
        for j in sorted(done, key=lambda j: j.finished_ms or 0)[: max(0, len(self.jobs) - self.keep)]:
            self.jobs.pop(j.id, None)
