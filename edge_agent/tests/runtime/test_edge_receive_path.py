"""The receive path on real loopback sockets: ring handoff, a full ring, the kernel buffer and its drops.

What an operator relies on: datagrams reach the decoder intact, in order, with their sender; when
the decoder is behind, the agent waits (counted) with bounded memory and the kernel buffer holds
the rest; what the kernel drops is counted exactly; a capped receive buffer is a clear warning.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clarion_edge import ring as r
from clarion_edge.cli import app
from clarion_edge.config import ConfigError, load_settings
from clarion_edge.receiver import Receiver
from clarion_edge.ring import RingReader, SlotRing
from clarion_edge.udp import kernel_counters, open_udp

BASE = {"agent_id": "edge-1", "server": "http://127.0.0.1:9", "token": "t"}


def _rig(slots: int, slot_bytes: int = 256 << 10) -> tuple[Any, Receiver, RingReader, threading.Thread]:
    lis = open_udp("127.0.0.1:0", 8 << 20)
    ring = SlotRing(slots, slot_bytes, shared=False)
    ctx = multiprocessing.get_context("spawn")
    ready_r, ready_w = ctx.Pipe(duplex=False)
    free_r, free_w = ctx.Pipe(duplex=False)
    rx = Receiver([lis.sock], ring, ready_w, free_r)
    t = threading.Thread(target=rx.run, daemon=True)
    t.start()
    return lis, rx, RingReader(ring, ready_r, free_w), t


def _read_all(reader: RingReader, want: int, timeout: float = 20) -> list[tuple[bytes, Any]]:
    got: list[tuple[bytes, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batches, stopped = reader.get(0.1)
        for _, datagrams in batches:
            got += datagrams
        assert not stopped
    return got


def _stop(rx: Receiver, reader: RingReader, t: threading.Thread) -> list[tuple[bytes, Any]]:
    rx.ring.counters[r.STOP] = 1
    rest: list[tuple[bytes, Any]] = []
    while True:
        batches, stopped = reader.get(1)
        for _, datagrams in batches:
            rest += datagrams
        if stopped:
            break
    t.join(5)
    assert not t.is_alive()
    return rest


def test_datagrams_reach_the_decoder_intact_in_order_with_their_sender() -> None:
    lis, rx, reader, t = _rig(slots=4, slot_bytes=256 << 10)
    port = lis.sock.getsockname()[1]
    sizes = [1, 65_507, 1400, 2, 30_000, *range(100, 1500, 7)]  # the largest UDP payload over IPv4, and tiny ones
    a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    sent = []
    for i, n in enumerate(sizes):
        src = a if i % 3 else b
        data = bytes([i % 256]) * n
        src.sendto(data, ("127.0.0.1", port))
        sent.append((data, src.getsockname()))
        if i % 50 == 49:
            time.sleep(0.01)
    got = _read_all(reader, len(sent))
    assert got == sent
    st = rx.ring.status()
    assert rx.ring.counters[r.DATAGRAMS] == len(sent)
    assert rx.ring.counters[r.BYTES] == sum(sizes)
    assert st["handoffs"] >= 2  # 65,507 + 30,000 + ... bytes cannot share one 256 KiB slot
    assert _stop(rx, reader, t) == []
    assert kernel_counters([lis.sock]) == [(0, 0)]
    a.close()
    b.close()
    lis.sock.close()


def test_a_full_ring_makes_the_receiver_wait_and_loses_nothing_when_the_decoder_catches_up() -> None:
    lis, rx, reader, t = _rig(slots=2, slot_bytes=160 << 10)
    port = lis.sock.getsockname()[1]
    payloads = [i.to_bytes(4, "big") * 350 for i in range(1000)]  # 1,400 bytes each: ~70 per slot, 1.4 MB in all
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in payloads:
            s.sendto(p, ("127.0.0.1", port))
    deadline = time.monotonic() + 10
    while rx.ring.counters[r.FULL_WAITS] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rx.ring.counters[r.FULL_WAITS] >= 1  # both slots handed over, none back: the receiver waits
    dropped, queued = kernel_counters([lis.sock])[0] or (None, None)
    assert dropped == 0
    assert queued is not None
    assert queued > 0  # the rest waits in the kernel buffer, not in the agent
    got = _read_all(reader, len(payloads)) + _stop(rx, reader, t)
    assert [d for d, _ in got] == payloads
    lis.sock.close()


def test_kernel_drops_are_counted_exactly_when_nobody_reads() -> None:
    lis = open_udp("127.0.0.1:0", 64 << 10)  # the smallest receive_buffer accepted
    port = lis.sock.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(500):
            s.sendto(i.to_bytes(4, "big") * 350, ("127.0.0.1", port))
    dropped, queued = kernel_counters([lis.sock])[0] or (0, 0)
    lis.sock.setblocking(False)
    read = 0
    try:
        while True:
            lis.sock.recv(65535)
            read += 1
    except BlockingIOError:
        pass
    assert dropped > 0
    assert queued > 0
    assert read + dropped == 500  # every datagram is either delivered or counted as dropped by the kernel
    lis.sock.close()


def test_a_capped_receive_buffer_is_read_back_and_warned_about_with_the_sysctl(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = socket.socket.setsockopt

    def no_force(self: socket.socket, level: int, opt: int, value: Any) -> None:  # as without CAP_NET_ADMIN
        if opt == 33:  # SO_RCVBUFFORCE
            raise PermissionError(1, "Operation not permitted")
        real(self, level, opt, value)

    monkeypatch.setattr(socket.socket, "setsockopt", no_force)
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    with caplog.at_level(logging.INFO, logger="clarion_edge.udp"):
        lis = open_udp("127.0.0.1:0", 1 << 30)
    lis.sock.close()
    assert not lis.forced
    assert lis.granted == 2 * rmem_max  # the kernel's own cap, read back (Linux reports twice the value)
    assert lis.capped
    warning = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warning) == 1
    assert "sysctl -w net.core.rmem_max=1073741824" in warning[0]
    assert f"granted a {2 * rmem_max}-byte receive buffer, less than the 1073741824 asked" in warning[0]


def test_as_root_the_receive_buffer_is_forced_past_rmem_max() -> None:
    lis = open_udp("127.0.0.1:0", 64 << 20)
    lis.sock.close()
    if not lis.forced:
        pytest.skip("not root / no CAP_NET_ADMIN: SO_RCVBUFFORCE refused")
    assert lis.granted == 128 << 20
    assert not lis.capped


@pytest.mark.parametrize(("raw", "expected"), [("33554432", 32 << 20), ("32M", 32 << 20), ("256MiB", 256 << 20),
                                               ("64k", 64 << 10), ("1G", 1 << 30), (8 << 20, 8 << 20)])  # fmt: skip
def test_receive_buffer_sizes(raw: object, expected: int) -> None:
    assert load_settings(None, env={}, overrides={**BASE, "receive_buffer": raw}).receive_buffer == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("32X", r"receive_buffer \(from --receive-buffer\): '32X' is not a size in bytes \(e.g. 33554432, 32M"),
        ("1000", r"receive_buffer \(from --receive-buffer\): 1000 bytes; accepted: 65536 \(64K\) to 1073741824"),
        ("2G", r"accepted: 65536 \(64K\) to 1073741824 \(1G\)"),
        (True, r"is not a size in bytes"),
    ],
)
def test_receive_buffer_limits(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env={}, overrides={**BASE, "receive_buffer": raw})


def test_receive_buffer_from_toml_env_and_flag(tmp_path: Any) -> None:
    conf = tmp_path / "edge.toml"
    conf.write_text('[agent]\nagent_id = "edge-1"\nreceive_buffer = "16M"\n[server]\nurl = "http://x:1"\ntoken = "t"\n')
    assert load_settings(conf, env={}).receive_buffer == 16 << 20
    env = {"CLARION_EDGE_RECEIVE_BUFFER": "64M"}
    assert load_settings(conf, env=env).receive_buffer == 64 << 20
    assert load_settings(conf, env=env, overrides={"receive_buffer": "128M"}).receive_buffer == 128 << 20
    old = tmp_path / "old.toml"  # the earlier name, [limits] rcvbuf, still works
    old.write_text('[agent]\nagent_id = "e"\n[server]\nurl = "http://x:1"\ntoken = "t"\n[limits]\nrcvbuf = 1048576\n')
    assert load_settings(old, env={}).receive_buffer == 1 << 20
    conf.write_text('[agent]\nagent_id = "e"\nreceive_buffer = 10\n[server]\nurl = "http://x:1"\ntoken = "t"\n')
    with pytest.raises(ConfigError, match=r"receive_buffer \(from .*edge.toml\): 10 bytes; accepted"):
        load_settings(conf, env={})
    result = CliRunner().invoke(app, ["run", "--config", str(conf)])
    assert result.exit_code == 2
    assert "receive_buffer" in result.output


def test_queue_batches_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"queue_batches \(from --queue-batches\): 5000; accepted: 2..1024"):
        load_settings(None, env={}, overrides={**BASE, "queue_batches": 5000})


def test_the_deploy_example_config_loads_with_its_documented_receive_buffer() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "clarion-edge.toml"
    s = load_settings(example, env={"CLARION_EDGE_TOKEN": "t"})
    assert (s.receive_buffer, s.queue_batches, s.worker) == (32 << 20, 16, "process")


def test_a_dead_receiver_process_flushes_what_it_received_and_stops_the_agent(tmp_path: Path) -> None:
    import os
    import signal

    from edge_test_server import GraphServer
    from flowgen import v5_datagram

    from clarion_edge.collector import Agent
    from clarion_edge.config import Settings

    server = GraphServer().start()
    settings = Settings(agent_id="edge-1", server=server.url, token="tok-edge-1", spool_dir=tmp_path, window=3600,
                        listen=("127.0.0.1:0",), status_listen="", worker="process")  # fmt: skip
    agent = Agent(settings)
    agent.start()
    try:
        deadline = time.monotonic() + 30
        while not agent.ready():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        port = agent._listeners[0].sock.getsockname()[1]
        flows = [("10.1.0.1", "192.0.2.10", 40000 + i, 443, 6, 2, 1000 + i) for i in range(30)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(4):
                s.sendto(v5_datagram(flows), ("127.0.0.1", port))
        while agent.status()["decoder"]["records"] < 120:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(agent._receiver.pid, signal.SIGKILL)
        assert agent.fatal.wait(20)  # the CLI exits non-zero: the supervisor restarts the agent
        assert "clarion-edge-receiver-process" in agent.dead_threads()
    finally:
        agent.stop()
        server.stop()
    assert server.ledger.totals()["flows"] == 120  # the open window was flushed and sent, not lost
    assert agent.status()["receiver"]["datagrams"] == 4  # the last counts stay readable after stop


def test_waiting_slots_are_decoded_per_window_of_their_arrival() -> None:
    from flowgen import v5_datagram

    from clarion_edge.aggregator import AggregatorConfig
    from clarion_edge.stage import FlowStage

    stage = FlowStage(AggregatorConfig(agent_id="edge-1", window_s=1.0), {}, "sw-1")
    flows = [("10.1.0.1", "192.0.2.10", 40000 + i, 443, 6, 1, 100) for i in range(30)]
    addr = ("127.0.0.1", 9995)
    t0 = 1_795_000_000_000  # a window boundary
    slots = [(t0 + 10, [(v5_datagram(flows), addr)] * 2), (t0 + 990, [(v5_datagram(flows), addr)]),
             (t0 + 1_005, [(v5_datagram(flows[:5]), addr)])]  # fmt: skip
    closed = stage.process_many(slots) + stage.flush(t0 + 5_000)
    by_window = {w.window.start: int(sum(w.tables.edges["flows"])) for w in closed}
    assert by_window == {t0: 90, t0 + 1_000: 5}  # the last slot arrived in the next window, and stays there
    assert stage.records == 95
