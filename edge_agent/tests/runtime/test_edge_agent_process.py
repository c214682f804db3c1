"""The real agent process (`clarion-edge run`) fed UDP NetFlow v5, against a real HTTP server.

Shows the promises an operator relies on: totals at the server equal what the exporter sent;
a server outage loses nothing; kill -9 of the agent (even mid-request) neither loses nor
doubles what was spooled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from edge_test_server import GraphServer
from flowgen import v5_datagram

pytestmark = pytest.mark.integration


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProc:
    """One `python -m clarion_edge run` child with its UDP and status ports."""

    def __init__(self, tmp: Path, server_url: str, udp_port: int, status_port: int, worker: str = "thread") -> None:
        self.udp_port, self.status_port = udp_port, status_port
        env = {**os.environ, "CLARION_EDGE_TOKEN": "tok-edge-1", "CLARION_EDGE_SITE_PREFIXES": "10.0.0.0/8",
               "CLARION_EDGE_WORKER": worker}  # fmt: skip
        argv = [sys.executable, "-m", "clarion_edge", "run", "--listen", f"127.0.0.1:{udp_port}",
                "--server", server_url, "--agent-id", "edge-1", "--switch-id", "sw-1", "--window", "1",
                "--spool-dir", str(tmp / "spool"), "--status-listen", f"127.0.0.1:{status_port}"]  # fmt: skip
        self.log = (tmp / "agent.log").open("ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log)
        wait_for(lambda: self.status() is not None, what="agent status endpoint")

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/status", timeout=2) as r:
                return dict(json.load(r))
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}") from None
            return None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def wait_for(cond: Callable[[], Any], *, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def send_flows(port: int, datagrams: int, start: int) -> dict[str, int]:
    """Send v5 datagrams of 30 distinct flows each; return the exporter-side totals."""
    tot = {"flows": 0, "packets": 0, "bytes": 0}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in range(start, start + datagrams):
            flows = [(f"10.1.{d % 200}.{i + 1}", "192.0.2.10", 40000 + i, 443, 6, 1 + i, 100 * (d + 1) + i)
                     for i in range(30)]  # fmt: skip
            s.sendto(v5_datagram(flows, seq=d * 30), ("127.0.0.1", port))
            tot["flows"] += 30
            tot["packets"] += sum(f[5] for f in flows)
            tot["bytes"] += sum(f[6] for f in flows)
            if d % 50 == 49:
                time.sleep(0.01)  # stay far below the socket buffer
    return tot


def _settled(agent: AgentProc, records: int) -> Callable[[], bool]:
    def check() -> bool:
        st = agent.status()
        if st is None:
            return False
        agg = st["aggregator"]
        closed = agg["open_windows"] == 0 and agg["buffered_records"] == 0
        spooled = st["builder"]["windows"] == agg["windows"]  # every closed window is on disk
        return bool(st["decoder"]["records"] == records and closed and spooled)

    return check


@pytest.fixture
def ports() -> tuple[int, int, int]:
    return _free_port(), _free_port(socket.SOCK_DGRAM), _free_port()


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_agent_process_totals_survive_outage_and_kill9(
    tmp_path: Path, ports: tuple[int, int, int], worker: str
) -> None:
    http_port, udp_port, status_port = ports
    server = GraphServer(port=http_port)  # not started yet: the server is away
    ledger = server.ledger
    agent = AgentProc(tmp_path, server.url, udp_port, status_port, worker)
    try:
        sent = send_flows(udp_port, 120, 0)
        wait_for(_settled(agent, 120 * 30), what="windows closed and spooled")
        spooled = (agent.status() or {})["spool"]["depth"]
        assert spooled >= 1
        agent.kill9()  # nothing acknowledged yet: everything is in the spool only

        server.answer_delay = 1.5  # the server applies, then is slow to answer...
        server.start()
        agent = AgentProc(tmp_path, server.url, udp_port, status_port, worker)
        wait_for(lambda: len(ledger.applied) >= 1, what="first replayed batch applied")
        agent.kill9()  # ...and the agent dies before it hears the answer
        server.answer_delay = 0.0

        agent = AgentProc(tmp_path, server.url, udp_port, status_port, worker)
        wait_for(lambda: (agent.status() or {})["spool"]["depth"] == 0, what="spool drained")
        assert ledger.duplicates >= 1  # the unacknowledged batch was resent and recognised
        more = send_flows(udp_port, 60, 120)
        wait_for(_settled(agent, 60 * 30), what="second run windows closed")
        wait_for(lambda: (agent.status() or {})["spool"]["depth"] == 0, what="second run sent")

        server.stop()  # the server goes away mid-run...
        late = send_flows(udp_port, 40, 180)
        wait_for(_settled(agent, 100 * 30), what="windows spooled during the outage")
        assert (agent.status() or {})["spool"]["depth"] >= 1
        server = GraphServer(port=http_port)  # ...and comes back with the same database
        server.ledger = ledger
        server.start()
        wait_for(lambda: (agent.status() or {})["spool"]["depth"] == 0, what="spool drained after the outage")
        assert agent.terminate() == 0
    finally:
        if agent.proc.poll() is None:
            agent.kill9()
        server.stop()
    expected = {k: sent[k] + more[k] + late[k] for k in sent}
    got = ledger.totals()
    assert {k: got[k] for k in expected} == expected
    assert ledger.conflicts == 0
    assert ledger.invalid == 0
    seqs = sorted(seq for _, seq in ledger.applied)
    assert seqs == sorted(set(seqs))
    for g in ledger.graphs:
        assert g.switch.switch_id == "sw-1"
        assert g.switch.mgmt_ip == "127.0.0.1"
