"""The job runner: work in a real spawned worker process, progress back, and timeouts that kill."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clarion.jobs.runner import Job, JobRunner, JobState

pytestmark = pytest.mark.integration


def slow_square(x: int, seconds: float, progress: Callable[[float, str], None], pid_file: str = "") -> dict[str, int]:
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    for i in range(5):
        progress(i / 5, f"step {i}")
        time.sleep(seconds / 5)
    return {"square": x * x, "pid": os.getpid()}


def slow_with_pid(x: int, seconds: float, pid_file: str, progress: Callable[[float, str], None]) -> dict[str, int]:
    return slow_square(x, seconds, progress, pid_file)


def wait(job: Job, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while job.finished_ms is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return job


def test_job_runs_in_a_worker_and_reports_progress() -> None:
    runner = JobRunner(timeout_s=60)
    seen: list[float] = []

    def work(job: Job, r: JobRunner) -> dict[str, Any]:
        out: dict[str, Any] = r.run_in_worker(job, slow_square, 7, 1.0, span=(0.5, 1.0))
        seen.append(job.progress)
        return out

    try:
        job = wait(runner.submit("square", work))
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.result["square"] == 49
        assert job.result["pid"] != os.getpid()
        assert 0.5 <= seen[0] < 1.0  # progress from inside the worker arrived, mapped onto the span
        again = wait(runner.submit("square", work))
        assert again.result["pid"] == job.result["pid"]  # the warm worker is reused
    finally:
        runner.close()


def test_timeout_kills_the_worker_and_the_runner_recovers(tmp_path: Path) -> None:
    runner = JobRunner(timeout_s=120)
    pid_file = tmp_path / "pid"

    def slow_work(job: Job, r: JobRunner) -> dict[str, Any]:
        return r.run_in_worker(job, slow_with_pid, 3, 60.0, str(pid_file))  # type: ignore[no-any-return]

    try:
        warm = wait(runner.submit("square", lambda job, r: r.run_in_worker(job, slow_square, 2, 0.1)))
        assert warm.state is JobState.SUCCEEDED  # the worker process exists (spawning is slow on a busy host)
        runner.timeout_s = 3
        slow = wait(runner.submit("square", slow_work))
        assert slow.state is JobState.TIMED_OUT
        assert "exceeded 3 s" in (slow.error or "")
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the worker is gone, not left burning CPU
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"worker {pid} still runs after the job timed out")
        runner.timeout_s = 120
        fast = wait(runner.submit("square", lambda job, r: r.run_in_worker(job, slow_square, 4, 0.1)))
        assert fast.state is JobState.SUCCEEDED
        assert fast.result["square"] == 16
    finally:
        runner.close()


def test_failing_work_reports_its_error() -> None:
    runner = JobRunner(timeout_s=10)

    def boom(job: Job, r: JobRunner) -> dict[str, Any]:
        raise ValueError("no devices in the graph yet: ingest flows first")

    try:
        job = wait(runner.submit("x", boom))
        assert job.state is JobState.FAILED
        assert job.error == "ValueError: no devices in the graph yet: ingest flows first"
    finally:
        runner.close()
