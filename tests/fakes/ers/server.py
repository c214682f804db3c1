"""Serve the fake ERS with a real uvicorn on 127.0.0.1 (a free port), optionally over TLS, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from tests.fakes.ers.app import FakeERS
from tests.fakes.ers.state import FakeERSState


class ERSServer:
    """``with ERSServer() as ers:`` gives ``ers.base_url`` (``http://127.0.0.1:PORT``) and ``ers.state``."""

    def __init__(
        self, state: FakeERSState | None = None, *, certfile: Path | None = None, keyfile: Path | None = None
    ) -> None:
        self.fake = FakeERS(state)
        self.state = self.fake.state
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = certfile is not None
        config = uvicorn.Config(
            self.fake.app,
            log_level="warning",
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ERSServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake ERS server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ERSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
