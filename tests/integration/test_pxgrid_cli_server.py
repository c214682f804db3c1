"""pxGrid from the command line and into the real Clarion server: CLI run and settings errors, and the whole
identity path through HttpSink, uvicorn and the graph."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import HttpSink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, IdentityRecorder, settings_for, streaming, wait_for
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here


def test_cli_run_streams_to_the_server_and_stops_on_sigterm(fake: FakePxGrid, pki: Pki, tmp_path: Path) -> None:
    recorder = IdentityRecorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    fake.add_sessions([session(i, T0 + i) for i in range(20)])
    config = tmp_path / "pxgrid.toml"
    config.write_text(f'[pxgrid]\nhosts = ["127.0.0.1"]\nport = {fake.port}\nca_cert = "{pki.ca_cert}"\n')
    argv = [
        sys.executable,
        "-c",
        "from clarion.sources.pxgrid.cli import app; app()",
        "run",
        "--config",
        str(config),
        "--node-name",
        pki.client_cn,
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
        "--server",
        f"http://127.0.0.1:{recorder.server_address[1]}",
        "--token",
        "agent-tok",
        "--status-port",
        "0",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(recorder.sessions) == 20, timeout=60, what="the bulk download POSTed to the server")
        wait_for(lambda: fake.subscribed() == 1, timeout=30)
        fake.publish_sessions([session(99, T0 + 99)])
        wait_for(lambda: len(recorder.sessions) == 21, what="the streamed session POSTed")
        assert recorder.auth == {"Bearer agent-tok"}
        assert recorder.sessions[-1]["mac"] == "aa:bb:cc:00:00:63"
        assert recorder.sessions[-1]["sgt"] == 4
        assert {"value": 4, "name": "Employees", "ise_id": "sg-4", "description": None} in recorder.security_groups
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        recorder.shutdown()
        recorder.server_close()


def test_cli_rejects_bad_settings_with_a_clear_message(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "from clarion.sources.pxgrid.cli import app; app()", "run", "--node-name", "Bad Name"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "node_name 'Bad Name': 1-100 characters of a-z 0-9 - _ ." in result.stderr
    assert "hosts: give at least one pxGrid node" in result.stderr


IDENTITY_QUERY = """query($mac: String!) { device(mac: $mac) { identity {
  user { username } sgt { value name } sessionState ports { switchId interface }
} } }"""


def test_sessions_reach_the_graph_through_the_real_clarion_server(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], store: Any
) -> None:
    """The whole identity path: fake ISE → pxGrid service → HttpSink → uvicorn /api/v1/identity → FalkorDB."""
    from pydantic import SecretStr

    from clarion.api.app import create_app
    from clarion.config import Settings
    from clarion.server import BackgroundServer

    admin, reader = "admin-token-pxgrid-0123456789", "reader-token-pxgrid-0123456789"
    settings = Settings(graph_url=None, admin_token=SecretStr(admin), reader_token=SecretStr(reader))
    fake.add_sessions([session(1, T0 + 1)])
    with BackgroundServer(create_app(settings, store)) as server:

        def identity(mac: str) -> dict[str, Any] | None:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}) as c:
                r = c.post("/graphql", json={"query": IDENTITY_QUERY, "variables": {"mac": mac}})
            device = r.json()["data"]["device"]
            return device["identity"] if device else None

        sink = HttpSink(server.url, admin, backoff_s=0.05)
        svc = run_service(settings_for(fake, pki), sink)
        wait_for(lambda: streaming(svc)() and fake.subscribed() == 1, timeout=30)
        fake.publish_sessions([session(2, T0 + 2, sgt="Contractors", user="bob")])
        wait_for(lambda: identity("aa:bb:cc:00:00:02") is not None, timeout=30, what="bob's device in the graph")
        bob = identity("aa:bb:cc:00:00:02")
        assert bob is not None
        assert bob["sgt"] == {"value": 5, "name": "Contractors"}
        assert bob["user"]["username"] == "bob"
        assert bob["sessionState"] == "STARTED"
        assert {"switchId": "10.10.0.2", "interface": "GigabitEthernet1/0/3"} in bob["ports"]
        first = identity("aa:bb:cc:00:00:01")
        assert first is not None
        assert first["sgt"] == {"value": 4, "name": "Employees"}
        assert sink.rejected == 0
