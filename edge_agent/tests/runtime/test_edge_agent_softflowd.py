"""A real Debian exporter into the real agent: softflowd replays a pcap of known flows (v5, v9, IPFIX)
into ``Agent`` over UDP; the server's FLOWS_TO totals must equal the pcap's ground truth exactly."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edge_test_server import GraphServer

from clarion_edge.collector import Agent
from clarion_edge.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # edge_agent/tests: pcapgen
import pcapgen

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("softflowd") is None, reason="softflowd is not installed (apt-get install softflowd)"
    ),
]


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, object], Path]]:
    """A mixed IPv4/IPv6 pcap, and an IPv4-only one for v5 (which cannot carry IPv6)."""
    out = {}
    for name, v6_share in (("mixed", 0.1), ("v4", 0.0)):
        flows = pcapgen.make_flows(2000, seed=23, v6_share=v6_share)
        pcap = tmp_path_factory.mktemp("pcap") / f"{name}.pcap"
        pcapgen.write_pcap(pcap, flows)
        out[name] = (pcapgen.truth(flows), pcap)
    return out


@pytest.mark.parametrize("version", ["5", "9", "10"])
def test_softflowd_into_the_agent_gives_the_pcaps_totals(
    tmp_path: Path, graph_server: GraphServer, traffic: dict[str, tuple[dict[str, object], Path]], version: str
) -> None:
    truth, pcap = traffic["v4" if version == "5" else "mixed"]
    port = _udp_port()
    settings = Settings(agent_id="edge-1", server=graph_server.url, token="tok-edge-1", listen=(f"127.0.0.1:{port}",),
                        status_listen="", window=3600, spool_dir=tmp_path / "spool", switch_id="sw-pcap")  # fmt: skip
    agent = Agent(settings)
    agent.start()
    try:
        argv = ["softflowd", "-d", "-a", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-m", "2000000", "-v", version]
        if version == "10":
            argv += ["-A", "milli"]
        subprocess.run(argv, check=True, timeout=120, capture_output=True)
        deadline = time.monotonic() + 30
        while agent.status()["decoder"]["records"] < truth["flows"] and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.05)
    finally:
        agent.stop()  # flushes the open window into the spool and sends it
    got = graph_server.ledger.totals()
    assert {k: got[k] for k in ("flows", "packets", "bytes")} == {k: truth[k] for k in ("flows", "packets", "bytes")}
    assert {g.switch.switch_id for g in graph_server.ledger.graphs} == {"sw-pcap"}
