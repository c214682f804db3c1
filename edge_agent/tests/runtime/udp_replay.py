"""Replay a captured softflowd export into a running agent at a paced record rate, against the nfdump oracle.

Shared by the loopback-rate test and ``benchmarks/agent_udp.py``. The stream is softflowd's export
of a generated pcap (v5, v9 or IPFIX), captured once; nfcapd + nfdump give its flow, packet and
byte totals once (checked against the pcap's own truth). The sender replays whole passes of the
stream, so what it sent is exactly ``passes`` times the oracle's totals.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "netflow")]  # edge_agent/tests: pcapgen, exporters

import exporters as ex  # noqa: E402
import pcapgen  # noqa: E402

from clarion_edge.netflow.capture import read_datagrams, write_raw  # noqa: E402

VERSIONS = {"v5": ("5",), "v9": ("9",), "ipfix": ("10", "-A", "milli")}  # softflowd -v and extra flags
TOTALS = ("flows", "packets", "bytes")


def stream(version: str, flows: int, workdir: Path) -> tuple[list[bytes], dict[str, int]]:
    """softflowd's export of ``flows`` generated flows and its nfdump totals; both cached in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    raw = workdir / f"softflowd-{version}-{flows}.raw"
    oracle_file = raw.with_suffix(".oracle.json")
    if not raw.exists() or not oracle_file.exists():
        gen = pcapgen.make_flows(flows, seed=11, v6_share=0.0 if version == "v5" else 0.1)
        pcap = workdir / f"traffic-{version}-{flows}.pcap"
        pcapgen.write_pcap(pcap, gen)
        datagrams = ex.softflowd(pcap, *VERSIONS[version])
        rows = ex.nfdump_flows(_nfcapd(datagrams, workdir / f"nfcapd-{version}-{flows}"))
        oracle = {"flows": len(rows), "packets": sum(r[2] for r in rows), "bytes": sum(r[3] for r in rows)}
        truth = pcapgen.truth(gen)
        if any(oracle[k] != truth[k] for k in TOTALS):
            raise RuntimeError(f"nfdump's totals {oracle} differ from the pcap's {[truth[k] for k in TOTALS]}")
        write_raw(raw, datagrams)
        oracle_file.write_text(json.dumps({**oracle, "datagrams": len(datagrams)}))
    datagrams = [d for d, _, _ in read_datagrams(raw)]
    oracle = json.loads(oracle_file.read_text())
    return datagrams, {k: int(oracle[k]) for k in TOTALS}


def _nfcapd(datagrams: list[bytes], directory: Path) -> Path:
    if directory.exists():
        for f in directory.iterdir():
            f.unlink()
    ex.nfcapd_receive(datagrams, directory)
    return directory


def send_paced(port: int, datagrams: list[bytes], records_per_pass: int, rate: float, passes: int) -> dict[str, Any]:
    """Send ``passes`` whole passes of the stream to 127.0.0.1:``port`` at ``rate`` records/s, to a schedule.

    Datagram i is due at i / (datagrams per second); whatever is due is sent in one go (at most 512
    at once, so a stall is caught up smoothly), then the sender sleeps until the next one is due.
    Returns what it sent, the rate it achieved and how far it fell behind its schedule.
    """
    per_pass = len(datagrams)
    dg_rate = rate * per_pass / records_per_pass
    total = per_pass * passes
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    send, dest = sock.sendto, ("127.0.0.1", port)
    sent = 0
    behind = 0.0
    perf = time.perf_counter
    start = perf()
    while sent < total:
        now = perf() - start
        due = min(int(now * dg_rate) + 1, total)
        if due - sent > 1:
            behind = max(behind, now - sent / dg_rate)
        end = min(due, sent + 512)
        while sent < end:
            send(datagrams[sent % per_pass], dest)
            sent += 1
        if sent < total and sent >= due:
            pause = sent / dg_rate - (perf() - start)
            if pause > 0:
                time.sleep(pause)
    elapsed = perf() - start
    sock.close()
    return {
        "datagrams": sent,
        "records": passes * records_per_pass,
        "seconds": round(elapsed, 3),
        "rate": round(passes * records_per_pass / elapsed),
        "max_behind_s": round(behind, 3),
    }


def _sender_main(conn: Any, port: int, raw_args: tuple[str, int, str], rate: float, passes: int) -> None:
    version, flows, workdir = raw_args
    datagrams, oracle = stream(version, flows, Path(workdir))
    conn.send("ready")
    conn.recv()
    conn.send(send_paced(port, datagrams, oracle["flows"], rate, passes))


class Sender:
    """The paced sender in a process of its own (so it neither waits for nor slows the caller's threads)."""

    def __init__(self, port: int, version: str, flows: int, workdir: Path, rate: float, passes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_sender_main, args=(child, port, (version, flows, str(workdir)), rate, passes),
                                name="udp-replay-sender", daemon=True)  # fmt: skip
        self.proc.start()
        if not self._conn.poll(300) or self._conn.recv() != "ready":
            raise RuntimeError("the sender process did not get ready")

    def run(self, timeout: float) -> dict[str, Any]:
        """Start sending now; wait for the sender's figures."""
        self._conn.send("go")
        if not self._conn.poll(timeout):
            self.proc.kill()
            raise RuntimeError(f"the sender did not finish within {timeout} s")
        result: dict[str, Any] = self._conn.recv()
        self.proc.join(10)
        return result
