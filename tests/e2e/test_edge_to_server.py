"""The whole path with real parts: softflowd → `clarion-edge run` → `clarion serve` → GraphQL.

The export stream of a generated pcap is received by nfdump (the oracle) and by the agent; the
totals GraphQL reports must equal nfdump's, for NetFlow v5, v9 and IPFIX, and still after a
30 s server outage and a kill -9 of the agent.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "edge_agent" / "tests"), str(ROOT / "edge_agent" / "tests" / "netflow")]
import exporters as ex  # noqa: E402 - the agent's own exporter/oracle helpers
import pcapgen  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BIN = Path(sys.executable).parent
AGENT_TOKEN, ADMIN_TOKEN = "edge-e2e-token-0123456789", "admin-e2e-token-0123456789"
OUTAGE_S = 30.0
MISSING = ex.have("softflowd", "nfcapd", "nfdump")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Server:
    """`clarion serve` as a real process on its own data directory (restartable)."""

    def __init__(self, data_dir: Path) -> None:
        self.port, self.data_dir = free_port(), data_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "CLARION_DATA_DIR": str(self.data_dir), "CLARION_ADMIN_TOKEN": ADMIN_TOKEN,
               "CLARION_AGENT_TOKENS": f"edge-e2e={AGENT_TOKEN}"}  # fmt: skip
        env.pop("CLARION_GRAPH_URL", None)
        log = (self.data_dir.parent / "server.log").open("ab")
        self.proc = subprocess.Popen([str(BIN / "clarion"), "serve", "--port", str(self.port)], env=env,
                                     stdout=log, stderr=log)  # fmt: skip
        wait_for(self._healthy, "clarion serve to become healthy")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"clarion serve exited with {self.proc.returncode}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
            self.proc = None

    def stats(self) -> dict[str, int]:
        r = httpx.post(f"{self.url}/graphql", json={"query": "{ stats { flows packets bytes } }"},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)  # fmt: skip
        return dict(r.json()["data"]["stats"])


class Agent:
    """`clarion-edge run` as a real process; its spool survives kill -9."""

    def __init__(self, tmp: Path, server_url: str, udp_port: int) -> None:
        self.udp_port, self.status_port = udp_port, free_port()
        env = {**os.environ, "CLARION_EDGE_TOKEN": AGENT_TOKEN, "CLARION_EDGE_SITE_PREFIXES": "10.0.0.0/8"}
        argv = [str(BIN / "clarion-edge"), "run", "--listen", f"127.0.0.1:{udp_port}", "--server", server_url,
                "--agent-id", "edge-e2e", "--switch-id", "sw-e2e", "--window", "1", "--spool-dir", str(tmp / "spool"),
                "--status-listen", f"127.0.0.1:{self.status_port}"]  # fmt: skip
        self.proc = subprocess.Popen(argv, env=env, stdout=(tmp / "agent.log").open("ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: self.status() is not None, "the agent's status endpoint")

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.status_port}/status", timeout=2) as r:
                return dict(json.load(r))
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited with {self.proc.returncode}") from None
            return None

    def settled(self, records: int) -> bool:
        st = self.status()
        if st is None:
            return False
        agg = st["aggregator"]
        closed = agg["open_windows"] == 0 and agg["buffered_records"] == 0
        return bool(st["decoder"]["records"] >= records and closed and st["builder"]["windows"] == agg["windows"])

    def drained(self) -> bool:
        st = self.status()
        return st is not None and st["spool"]["depth"] == 0

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def export_stream(tmp: Path, version: str, n_flows: int) -> tuple[list[bytes], dict[str, int]]:
    """softflowd's export of a generated pcap, and nfdump's totals for that very stream."""
    flows = pcapgen.make_flows(n_flows, seed=int(version) if version.isdigit() else 10)
    pcap = tmp / f"traffic-{version}.pcap"
    pcapgen.write_pcap(pcap, flows)
    datagrams = ex.softflowd(pcap, version)
    ex.nfcapd_receive(datagrams, tmp / f"nfcapd-{version}")
    rows = ex.nfdump_flows(tmp / f"nfcapd-{version}")
    oracle = {"flows": len(rows), "packets": sum(r[2] for r in rows), "bytes": sum(r[3] for r in rows)}
    return datagrams, oracle


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "store")
    s.start()
    yield s
    s.stop()


@pytest.mark.skipif(MISSING is not None, reason=f"needs softflowd and nfdump: {MISSING}")
@pytest.mark.parametrize("version", ["5", "9", "10"], ids=["netflow-v5", "netflow-v9", "ipfix"])
def test_graphql_totals_equal_nfdump(tmp_path: Path, server: Server, version: str) -> None:
    datagrams, oracle = export_stream(tmp_path, version, 3000)
    agent = Agent(tmp_path, server.url, free_port(socket.SOCK_DGRAM))
    try:
        ex.replay(datagrams, agent.udp_port)
        wait_for(lambda: agent.settled(oracle["flows"]), "every record decoded, windowed and spooled")
        wait_for(agent.drained, "the spool to drain into the server")
        assert server.stats() == oracle
    finally:
        agent.stop()


@pytest.mark.skipif(MISSING is not None, reason=f"needs softflowd and nfdump: {MISSING}")
def test_totals_survive_a_server_outage_and_kill9_of_the_agent(tmp_path: Path, server: Server) -> None:
    datagrams, oracle = export_stream(tmp_path, "9", 4000)
    half = len(datagrams) // 2
    udp = free_port(socket.SOCK_DGRAM)
    agent = Agent(tmp_path, server.url, udp)
    try:
        ex.replay(datagrams[:half], udp)
        wait_for(lambda: agent.settled(1) and agent.drained(), "the first half to reach the server")
        server.stop()  # the server goes away in the middle of the run
        down_at = time.monotonic()
        before = (agent.status() or {})["decoder"]["records"]
        ex.replay(datagrams[half:], udp)
        wait_for(lambda: (agent.status() or {})["decoder"]["records"] > before and agent.settled(before + 1),
                 "the second half windowed and spooled while the server is away")  # fmt: skip
        time.sleep(1.0)
        wait_for(lambda: agent.settled((agent.status() or {})["decoder"]["records"]), "all windows spooled")
        assert (agent.status() or {})["spool"]["depth"] >= 1
        agent.kill9()  # and the agent dies with batches only in its spool
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        server.start()  # the same data directory
        agent = Agent(tmp_path, server.url, udp)
        wait_for(agent.drained, "the spool to replay into the server")
        assert server.stats() == oracle
    finally:
        agent.stop()
