"""The agent in-process: IPv4 and IPv6 listeners, per-exporter switches, graceful stop flushes open windows."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from edge_test_server import GraphServer
from flowgen import v5_datagram

from clarion_edge.collector import Agent
from clarion_edge.config import Settings

pytestmark = pytest.mark.integration


def _udp_port(family: int, host: str) -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _has_ipv6_loopback() -> bool:
    try:
        _udp_port(socket.AF_INET6, "::1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")
@pytest.mark.parametrize("worker", ["thread", "process"])
def test_ipv4_and_ipv6_exporters_become_two_switches_and_stop_flushes(
    tmp_path: Path, graph_server: GraphServer, worker: str
) -> None:
    p4, p6 = _udp_port(socket.AF_INET, "127.0.0.1"), _udp_port(socket.AF_INET6, "::1")
    settings = Settings(
        agent_id="edge-1", server=graph_server.url, token="tok-edge-1", listen=(f"127.0.0.1:{p4}", f"[::1]:{p6}"),
        status_listen="", window=3600, spool_dir=tmp_path / "spool", exporters={"127.0.0.1": "sw-v4"}, log_every=0.2,
        worker=worker,
    )  # fmt: skip
    agent = Agent(settings)
    agent.start()
    flows = [("10.1.0.1", "192.0.2.10", 40000 + i, 443, 6, 2, 1000 + i) for i in range(30)]
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6,
    ):
        for _ in range(5):
            s4.sendto(v5_datagram(flows), ("127.0.0.1", p4))
            s6.sendto(v5_datagram(flows[:10]), ("::1", p6))
    deadline = time.monotonic() + 20
    while agent.status()["decoder"]["records"] < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    status = agent.status()
    assert status["decoder"]["records"] == 200
    exporters = status["decoder"]["exporters"]
    assert any(k.startswith("127.0.0.1:") for k in exporters)
    assert any(k.startswith("[::1]:") for k in exporters)
    assert status["aggregator"]["open_windows"] == 2  # an hour-long window: nothing sent yet
    assert status["receiver"]["datagrams"] == 10
    assert status["dead_threads"] == []
    while not agent.status()["rates"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(agent.status()["rates"]) == {"datagrams_per_s", "records_per_s", "over_s"}
    assert graph_server.ledger.graphs == []
    agent.stop()  # flushes both open windows to the spool and sends them
    by_switch = {g.switch.switch_id: g for g in graph_server.ledger.graphs}
    assert sorted(by_switch) == ["exporter-::1", "sw-v4"]
    assert by_switch["exporter-::1"].switch.mgmt_ip == "::1"
    assert by_switch["sw-v4"].switch.mgmt_ip == "127.0.0.1"
    assert graph_server.ledger.totals()["flows"] == 200
    assert graph_server.ledger.totals()["bytes"] == 5 * sum(f[6] for f in flows) + 5 * sum(f[6] for f in flows[:10])
    assert agent.spool.depth == 0


def test_exporter_names() -> None:
    from clarion_edge.udp import exporter_name

    assert exporter_name(("10.0.0.1", 2055)) == ("10.0.0.1:2055", "10.0.0.1")
    assert exporter_name(("::ffff:10.0.0.1", 2055, 0, 0)) == ("10.0.0.1:2055", "10.0.0.1")
    assert exporter_name(("fe80::1%eth0", 9995, 0, 2)) == ("[fe80::1]:9995", "fe80::1")


def test_status_endpoint_reports_and_healthz_fails_when_a_stage_died() -> None:
    import httpx

    from clarion_edge.status import StatusServer

    dead: list[str] = []
    server = StatusServer("127.0.0.1:0", lambda: {"spool": {"depth": 3}}, lambda: dead)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(base + "/status").json() == {"spool": {"depth": 3}}
        assert httpx.get(base + "/healthz").status_code == 200
        dead.append("clarion-edge-worker")
        failing = httpx.get(base + "/healthz")
        assert failing.status_code == 503
        assert failing.json() == {"status": "failing", "dead_threads": ["clarion-edge-worker"]}
        assert httpx.get(base + "/nope").status_code == 404
    finally:
        server.stop()


def test_batches_spooled_under_another_agent_id_are_set_aside_at_start(tmp_path: Path) -> None:
    from edge_samples import sample_graph

    from clarion_edge.spool import Spool

    Spool(tmp_path / "spool").put(sample_graph(4, agent_id="edge-old").sealed())
    Spool(tmp_path / "spool").put(sample_graph(5, agent_id="edge-1").sealed())
    settings = Settings(agent_id="edge-1", server="http://127.0.0.1:9", token="t", spool_dir=tmp_path / "spool")
    agent = Agent(settings)
    assert agent.spool.pending_seqs() == [5]
    assert (tmp_path / "spool" / "rejected" / "00000000000000000004.reason.json").exists()
    assert agent.seqs.next() == 6
    agent.sender.close()


def test_a_taken_port_fails_at_start_with_the_address_named(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        settings = Settings(agent_id="edge-1", server="http://127.0.0.1:9", token="t", spool_dir=tmp_path,
                            listen=(f"127.0.0.1:{port}",), status_listen="")  # fmt: skip
        agent = Agent(settings)
        with pytest.raises(OSError, match=rf"cannot listen for NetFlow on UDP 127.0.0.1:{port}"):
            agent.start()
        assert agent.shipper.alive
        assert agent.dead_threads() == []
        agent.sender.close()


def test_a_dead_worker_process_stops_the_agent_for_its_supervisor(tmp_path: Path, graph_server: GraphServer) -> None:
    import os
    import signal

    settings = Settings(agent_id="edge-1", server=graph_server.url, token="tok-edge-1", spool_dir=tmp_path,
                        listen=("127.0.0.1:0",), status_listen="", worker="process")  # fmt: skip
    agent = Agent(settings)
    agent.start()
    try:
        os.kill(agent._child[0].pid, signal.SIGKILL)
        assert agent.fatal.wait(20)
        assert "clarion-edge-worker-process" in agent.dead_threads()
    finally:
        agent.stop()
