"""Benchmark: the running agent takes a softflowd export over loopback UDP at a fixed record rate; is anything lost?

Issue 3's test: a sender process replays a captured softflowd export (v9 by default; v5, IPFIX)
at ``--rate`` records/s for ``--seconds`` to a running ``python -m clarion_edge run`` (its own
process), posting to the test ingest server (a real HTTP server with the server's contract, from
tests/runtime). After every window closed and every batch was acknowledged, the server's
FLOWS_TO totals (flows, packets, bytes) are compared with the oracle: nfdump's totals of the
captured stream (computed once, checked against the pcap's truth) times the passes sent.

    .venv/bin/python edge_agent/benchmarks/agent_udp.py --rate 500000 --seconds 60

Prints the rate achieved, loss, kernel drops and the agent's CPU; the last line is one JSON
object (with ``--runs N``: one line per run, then a summary: lossless runs, median rate and loss).
Run on demand, never in the test suite; on a shared machine quote medians of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
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
from udp_replay import TOTALS, Sender, stream  # noqa: E402


def _port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return dict(json.load(r))


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """utime + stime per named process, from /proc (0 for a process that is gone)."""
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            out[name] = 0.0
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=500_000, help="records per second to send")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--version", choices=("v5", "v9", "ipfix"), default="v9", help="softflowd export version")
    ap.add_argument("--flows", type=int, default=100_000, help="flows in the captured stream (one pass)")
    ap.add_argument("--window", type=float, default=10.0, help="agent window in seconds")
    ap.add_argument("--worker", choices=("thread", "process"), default="process", help="agent receiver/decoder mode")
    ap.add_argument("--receive-buffer", default="32M", help="agent UDP receive buffer (receive_buffer)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "clarion-edge-bench",
                    help="cache of the captured streams and their oracle totals")  # fmt: skip
    ap.add_argument("--nice", type=int, default=0, help="nice value for the agent, sender and server (negative "
                    "needs root): on a shared machine, approximates a host where they get their CPU")  # fmt: skip
    ap.add_argument("--runs", type=int, default=1, help="runs in a row; the last line then sums them up")
    args = ap.parse_args()
    reports = []
    for i in range(args.runs):
        reports.append(run_once(args))
        print(json.dumps(reports[-1]))
        if i + 1 < args.runs:
            time.sleep(5)  # let the machine settle between runs
    if args.runs == 1:
        return
    print(json.dumps({
        "runs": args.runs,
        "lossless_runs": sum(r["exact"] for r in reports),
        "median_rate_sent": statistics.median(r["rate_sent"] for r in reports),
        "median_loss_fraction": statistics.median(r["loss_fraction"] for r in reports),
        "kernel_drops": [r["kernel_drops"] for r in reports],
        "loss_fraction": [r["loss_fraction"] for r in reports],
        "rate_sent": [r["rate_sent"] for r in reports],
        "agent_cpu_share_while_sending": [r["agent_cpu_share_while_sending"] for r in reports],
        "loadavg_before": [r["loadavg_before"][0] for r in reports],
    }))  # fmt: skip


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One run: a fresh agent and server, the paced replay, the comparison; prints a summary line."""
    _, oracle = stream(args.version, args.flows, args.workdir)
    passes = max(1, round(args.rate * args.seconds / oracle["flows"]))
    server = GraphServer(tokens={"tok-bench": "edge-bench"}).start()
    udp_port, status_port = _port(socket.SOCK_DGRAM), _port(socket.SOCK_STREAM)
    tmp = Path(tempfile.mkdtemp(prefix="clarion-edge-bench-"))
    env = {**os.environ, "CLARION_EDGE_TOKEN": "tok-bench", "CLARION_EDGE_WORKER": args.worker}
    argv = [sys.executable, "-m", "clarion_edge", "run", "--listen", f"127.0.0.1:{udp_port}",
            "--server", server.url, "--agent-id", "edge-bench", "--switch-id", "sw-bench",
            "--window", str(args.window), "--spool-dir", str(tmp / "spool"),
            "--status-listen", f"127.0.0.1:{status_port}", "--receive-buffer", args.receive_buffer]  # fmt: skip
    log = (tmp / "agent.log").open("wb")
    agent = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    sender = Sender(udp_port, args.version, args.flows, args.workdir, args.rate, passes)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                st = status(status_port)
                if st["ready"]:  # the receiver and decoder processes run
                    break
                time.sleep(0.1)
            except OSError:
                if time.monotonic() > deadline or agent.poll() is not None:
                    raise SystemExit(f"agent did not start; see {tmp / 'agent.log'}") from None
                time.sleep(0.1)
        pids = {"agent": agent.pid, **st["processes"]}
        if args.nice:  # the agent, the sender and this process (the test server)
            for pid in [*pids.values(), sender.proc.pid, os.getpid()]:
                os.setpriority(os.PRIO_PROCESS, pid, args.nice)
        load_before = os.getloadavg()
        cpu0 = cpu_seconds(pids)
        sent = sender.run(timeout=args.seconds * 3 + 60)
        cpu_send = cpu_seconds(pids)
        load_after = os.getloadavg()
        # every window closes within one window length; then the spool drains
        earliest = time.monotonic() + args.window + 1
        deadline = earliest + 180
        while time.monotonic() < deadline:
            st = status(status_port)
            agg = st["aggregator"]
            settled = (
                agg["open_windows"] == 0
                and agg["buffered_records"] == 0
                and st["receiver"]["ring"]["slots_in_use"] == 0
            )
            if settled and st["spool"]["depth"] == 0 and time.monotonic() > earliest:
                break
            time.sleep(0.5)
        cpu = cpu_seconds(pids)
        st = status(status_port)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        server.stop()
    got = server.ledger.totals()
    expected = {k: oracle[k] * passes for k in TOTALS}
    lost = {k: expected[k] - got[k] for k in TOTALS}
    agent_cpu = {k: round(cpu[k] - cpu0[k], 2) for k in cpu}
    during = {k: round(cpu_send[k] - cpu0[k], 2) for k in cpu}
    total_cpu = sum(agent_cpu.values())
    rx = st["receiver"]
    report = {
        "version": args.version,
        "worker": args.worker,
        "nice": args.nice,
        "rate_asked": args.rate,
        "rate_sent": sent["rate"],
        "seconds": sent["seconds"],
        "sender_max_behind_s": sent["max_behind_s"],
        "passes": passes,
        "datagrams_sent": sent["datagrams"],
        "expected": expected,
        "received_by_server": {k: got[k] for k in TOTALS},
        "lost": lost,
        "loss_fraction": round(lost["flows"] / expected["flows"], 6),
        "exact": all(v == 0 for v in lost.values()),
        "kernel_drops": rx["kernel_drops"],
        "agent_datagrams": rx["datagrams"],
        "datagrams_unaccounted": sent["datagrams"] - rx["datagrams"] - (rx["kernel_drops"] or 0),
        "receive_buffer_granted": [s["receive_buffer_granted"] for s in rx["sockets"]],
        "ring": rx["ring"],
        "decoded_records": st["decoder"]["records"],
        "decoder_waited_for_builder_s": st.get("builder_wait_s"),
        "agent_cpu_s": agent_cpu,
        "agent_cpu_s_while_sending": during,
        "agent_cpu_share_while_sending": round(sum(during.values()) / sent["seconds"], 2),
        "agent_records_per_cpu_s": round(st["decoder"]["records"] / total_cpu) if total_cpu else None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "batches": len(server.ledger.graphs),
        "log": str(tmp / "agent.log"),
    }
    print(
        f"{args.version} {args.worker}: sent {sent['rate']:,} records/s for {sent['seconds']} s "
        f"({expected['flows']:,} records); server got {got['flows']:,}; lost {lost['flows']:,} "
        f"({report['loss_fraction']:.4%}); kernel drops {rx['kernel_drops']}; agent CPU {total_cpu:.1f} s "
        f"({report['agent_cpu_share_while_sending']} cores while sending); "
        f"load {load_before[0]:.1f}->{load_after[0]:.1f}"
    )
    return report


if __name__ == "__main__":
    main()
