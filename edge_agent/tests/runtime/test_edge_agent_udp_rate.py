"""Issue 3's loopback test, short: softflowd's v9 export replayed at a paced rate into `clarion-edge run`.

The long version (500k records/s for 60 s) is ``benchmarks/agent_udp.py``; this one runs the same
path at a rate far below the machine's limit (the kernel buffer alone could hold the whole
stream), so it checks correctness, not speed: the server's totals equal nfdump's, exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from edge_test_server import GraphServer
from udp_replay import TOTALS, Sender, stream

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("softflowd", "nfcapd", "nfdump")),
                       reason="needs softflowd and nfdump (apt-get install softflowd nfdump)"),
]  # fmt: skip

FLOWS, RATE, SECONDS = 5000, 20_000, 3


def _port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
            return dict(json.load(r))
    except OSError:
        return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streams")


@pytest.mark.parametrize("worker", ["process", "thread"])
def test_paced_softflowd_v9_replay_reaches_the_server_exactly(tmp_path: Path, workdir: Path, worker: str) -> None:
    _, oracle = stream("v9", FLOWS, workdir)
    passes = RATE * SECONDS // FLOWS
    server = GraphServer().start()
    udp_port, status_port = _port(socket.SOCK_DGRAM), _port(socket.SOCK_STREAM)
    env = {**os.environ, "CLARION_EDGE_TOKEN": "tok-edge-1", "CLARION_EDGE_WORKER": worker,
           "CLARION_EDGE_RECEIVE_BUFFER": "16M"}  # fmt: skip
    argv = [sys.executable, "-m", "clarion_edge", "run", "--listen", f"127.0.0.1:{udp_port}", "--server", server.url,
            "--agent-id", "edge-1", "--switch-id", "sw-rate", "--window", "1", "--spool-dir", str(tmp_path / "spool"),
            "--status-listen", f"127.0.0.1:{status_port}"]  # fmt: skip
    with (tmp_path / "agent.log").open("wb") as log:
        agent = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    sender = Sender(udp_port, "v9", FLOWS, workdir, RATE, passes)
    try:
        deadline = time.monotonic() + 30
        while not (_status(status_port) or {}).get("ready"):
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            assert time.monotonic() < deadline, "the agent's status endpoint never answered"
            time.sleep(0.1)
        sent = sender.run(timeout=60)
        deadline = time.monotonic() + 60
        while True:
            st = _status(status_port) or {}
            settled = st.get("decoder", {}).get("records") == oracle["flows"] * passes
            if settled and st["aggregator"]["open_windows"] == 0 and st["spool"]["depth"] == 0:
                break
            assert time.monotonic() < deadline, f"not settled: {st.get('receiver')}"
            time.sleep(0.1)
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(60)
        server.stop()
    assert code == 0
    assert sent["datagrams"] == passes * len(stream("v9", FLOWS, workdir)[0])
    assert sent["rate"] <= RATE * 1.05  # paced, not blasted
    got = server.ledger.totals()
    assert {k: got[k] for k in TOTALS} == {k: oracle[k] * passes for k in TOTALS}
    rx = st["receiver"]
    assert rx["datagrams"] == sent["datagrams"]
    assert rx["kernel_drops"] == 0
    assert rx["mode"] == worker
    [sock] = rx["sockets"]
    assert sock["listen"] == f"127.0.0.1:{udp_port}"
    assert sock["receive_buffer_asked"] == 16 << 20
    assert sock["receive_buffer_granted"] >= 16 << 20 or sock["capped"]
    assert rx["ring"]["slots"] == 16
    assert st["failed_datagrams"] == 0
    assert st["builder_wait_s"] >= 0.0
    assert set(st["processes"]) == ({"receiver", "worker"} if worker == "process" else set())
    log_text = (tmp_path / "agent.log").read_text()
    assert f"receive buffer {16 << 20} bytes asked, {sock['receive_buffer_granted']} granted" in log_text
