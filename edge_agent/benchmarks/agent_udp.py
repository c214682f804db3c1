"""Benchmark: the running agent takes NetFlow v5 over loopback UDP at a fixed record rate; is anything lost?

Starts the test ingest server (a real HTTP server with the server's contract, from
tests/runtime), runs ``python -m clarion_edge run`` as a child process, sends pre-built v5
datagrams (30 records each) at ``--rate`` records/s for ``--seconds``, waits for every window
to close and every batch to be acknowledged, then compares the server's FLOWS_TO totals
(flows, packets, bytes) with what was sent: the oracle is the sender's own sums.

    .venv/bin/python edge_agent/benchmarks/agent_udp.py --rate 500000 --seconds 60

Run on demand, never in the test suite. On a shared machine quote medians of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "runtime"))

from edge_test_server import GraphServer  # noqa: E402
from flowgen import v5_datagram  # noqa: E402

RECORDS_PER_DATAGRAM = 30
TICK = 0.005


def _port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_pool(size: int, hosts: int, seed: int) -> list[tuple[bytes, int, int]]:
    """(datagram, packets, bytes) for ``size`` distinct datagrams of campus-like flows.

    Each host talks to a few usual servers (8 of 300, local or remote) on their service port, from
    ever-changing client ports: many records per FLOWS_TO edge, as in a real window.
    """
    rnd = random.Random(seed)  # noqa: S311 - reproducible traffic, not cryptography
    services = [(6, 443), (6, 80), (17, 53), (6, 22), (6, 445), (6, 3389), (17, 123), (6, 8080), (6, 389), (6, 88)]
    servers = [
        (f"198.51.{rnd.randrange(100)}.{rnd.randrange(1, 255)}" if k % 3 else f"10.200.0.{k % 250 + 1}",
         *rnd.choice(services))
        for k in range(300)
    ]  # fmt: skip
    usual = [rnd.sample(servers, 8) for _ in range(hosts)]
    pool = []
    for d in range(size):
        flows = []
        for _ in range(RECORDS_PER_DATAGRAM):
            h = rnd.randrange(hosts)
            dst, proto, port = rnd.choice(usual[h])
            flows.append((f"10.{h >> 16 & 255}.{h >> 8 & 255}.{h & 255}", dst, rnd.randrange(32768, 61000), port, proto,
                          rnd.randrange(1, 200), rnd.randrange(40, 200_000)))  # fmt: skip
        pool.append((v5_datagram(flows, seq=d * 30, unix_secs=int(time.time())), sum(f[5] for f in flows),
                     sum(f[6] for f in flows)))  # fmt: skip
    return pool


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return dict(json.load(r))


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and its live children (the worker process)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def send(udp_port: int, pool: list[tuple[bytes, int, int]], rate: int, seconds: float) -> tuple[dict[str, int], float]:
    """Send at ``rate`` records/s on average (catching up after the sender's own stalls); return totals, seconds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    dest = ("127.0.0.1", udp_port)
    per_s = rate / RECORDS_PER_DATAGRAM
    packets = byts = 0
    sent = 0
    n = len(pool)
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        due = min(int((now - start) * per_s) - sent, 2000)
        for _ in range(due):
            data, pk, by = pool[sent % n]
            sock.sendto(data, dest)
            packets += pk
            byts += by
            sent += 1
        if due < 50:
            time.sleep(TICK)
    sock.close()
    return {"flows": sent * RECORDS_PER_DATAGRAM, "packets": packets, "bytes": byts}, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=500_000, help="records per second to send")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=10.0, help="agent window in seconds")
    ap.add_argument("--hosts", type=int, default=5000, help="distinct local hosts in the traffic")
    ap.add_argument("--pool", type=int, default=4000, help="distinct datagrams to cycle through")
    ap.add_argument("--worker", choices=("thread", "process"), default="process", help="agent decode/aggregate stage")
    ap.add_argument("--rcvbuf", type=int, default=32 << 20, help="agent UDP receive buffer in bytes")
    ap.add_argument("--nice", type=int, default=0, help="nice value for the agent and the sender (negative needs "
                    "root): on a shared machine, approximates hosts where each has its core")  # fmt: skip
    args = ap.parse_args()

    pool = build_pool(args.pool, args.hosts, seed=1)
    server = GraphServer(tokens={"tok-bench": "edge-bench"}).start()
    udp_port, status_port = _port(socket.SOCK_DGRAM), _port(socket.SOCK_STREAM)
    tmp = Path(tempfile.mkdtemp(prefix="clarion-edge-bench-"))
    env = {**os.environ, "CLARION_EDGE_TOKEN": "tok-bench", "CLARION_EDGE_WORKER": args.worker}
    (tmp / "agent.toml").write_text(f"[limits]\nrcvbuf = {args.rcvbuf}\n")
    argv = [sys.executable, "-m", "clarion_edge", "run", "--config", str(tmp / "agent.toml"),
            "--listen", f"127.0.0.1:{udp_port}", "--server", server.url,
            "--agent-id", "edge-bench", "--switch-id", "sw-bench", "--window", str(args.window),
            "--spool-dir", str(tmp / "spool"), "--status-listen", f"127.0.0.1:{status_port}"]  # fmt: skip
    log = (tmp / "agent.log").open("wb")
    agent = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, agent.pid, args.nice)
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status(status_port)
                break
            except OSError:
                if time.monotonic() > deadline or agent.poll() is not None:
                    raise SystemExit(f"agent did not start; see {tmp / 'agent.log'}") from None
                time.sleep(0.1)
        cpu0 = cpu_seconds(agent.pid)
        sent, elapsed = send(udp_port, pool, args.rate, args.seconds)
        # every window closes within one window length; then the spool drains
        earliest = time.monotonic() + args.window + 1
        deadline = earliest + 120
        while time.monotonic() < deadline:
            st = status(status_port)
            agg = st["aggregator"]
            settled = agg["open_windows"] == 0 and agg["buffered_records"] == 0 and st["receiver"]["queue_depth"] == 0
            if settled and st["spool"]["depth"] == 0 and time.monotonic() > earliest:
                break
            time.sleep(0.5)
        cpu = cpu_seconds(agent.pid) - cpu0
        st = status(status_port)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        server.stop()
    got = server.ledger.totals()
    report = {
        "rate_asked": args.rate,
        "worker": args.worker,
        "nice": args.nice,
        "rcvbuf": args.rcvbuf,
        "rate_sent": round(sent["flows"] / elapsed),
        "seconds": round(elapsed, 1),
        "sent": sent,
        "received_by_server": {k: got[k] for k in sent},
        "lost_flows": sent["flows"] - got["flows"],
        "exact": all(sent[k] == got[k] for k in sent),
        "agent_cpu_seconds": round(cpu, 1),
        "agent_records_per_cpu_second": round(st["decoder"]["records"] / cpu) if cpu else None,
        "agent_decoded_records": st["decoder"]["records"],
        "kernel_drops": st["receiver"]["kernel_drops"],
        "receiver_waited_s": st["receiver"]["backpressure_s"],
        "batches": len(server.ledger.graphs),
        "edges": got["edges"],
        "log": str(tmp / "agent.log"),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
