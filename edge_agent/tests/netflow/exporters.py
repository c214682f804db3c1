"""Run real Debian exporters (softflowd, pmacct's nfprobe) over a pcap and nfcapd/nfdump as the oracle.

Shared by the oracle tests and the benchmark. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

_SO_RCVBUFFORCE = 33  # Linux: root may exceed net.core.rmem_max


def udp_socket() -> socket.socket:
    """A loopback UDP socket with a receive buffer large enough for an exporter's end-of-file burst."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 256 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    return sock


def collect(argv: list[str], sock: socket.socket, timeout_s: float = 120) -> list[bytes]:
    """Run an exporter until it exits and return every datagram it sent to ``sock``."""
    sock.settimeout(0.3)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    datagrams: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                datagrams.append(sock.recv(65535))
            except TimeoutError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=10)
    if proc.returncode not in (0, -15):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return datagrams


def softflowd(pcap: Path, version: str, *extra: str) -> list[bytes]:
    """softflowd reading a pcap (``-a``: pcap time, ``-m``: keep every flow to the end)."""
    with udp_socket() as sock:
        port = sock.getsockname()[1]
        argv = ["softflowd", "-d", "-a", "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-m", "2000000", "-v", version]
        return collect([*argv, *extra], sock)


def nfprobe(pcap: Path, version: str, workdir: Path) -> list[bytes]:
    """pmacct's pmacctd with the nfprobe plugin reading a pcap savefile."""
    with udp_socket() as sock:
        port = sock.getsockname()[1]
        conf = workdir / f"pmacctd-{version}.conf"
        conf.write_text(
            f"daemonize: false\npcap_savefile: {pcap}\nplugins: nfprobe\n"
            f"nfprobe_receiver: 127.0.0.1:{port}\nnfprobe_version: {version}\n"
        )
        return collect(["pmacctd", "-f", str(conf)], sock)


def _udp_listening(port: int) -> bool:
    needle = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            if needle in Path(table).read_text():
                return True
        except OSError:
            continue
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nfcapd(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start nfcapd on a free loopback port and wait until its socket is bound."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        ["nfcapd", "-p", str(port), "-b", "127.0.0.1", "-w", str(directory), "-t", "3600", "-B", str(64 << 20)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _udp_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("nfcapd did not start listening")
        time.sleep(0.05)
    return proc, port


def replay(datagrams: list[bytes], port: int, pace_every: int = 64) -> None:
    """Send datagrams to 127.0.0.1:port, yielding the CPU now and then so the receiver keeps up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, d in enumerate(datagrams):
            s.sendto(d, ("127.0.0.1", port))
            if i % pace_every == pace_every - 1:
                time.sleep(0.0005)


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nfcapd_receive(datagrams: list[bytes], directory: Path) -> float:
    """Replay the stream to a fresh nfcapd, stop it (it flushes its file) and return its CPU seconds."""
    proc, port = start_nfcapd(directory)
    try:
        before = proc_cpu_s(proc.pid)
        replay(datagrams, port)
        time.sleep(0.5)
        cpu = proc_cpu_s(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return cpu


def nfdump_flows(directory: Path) -> list[tuple[int, int, int, int, float]]:
    """(protocol, dst port, packets, bytes, start epoch s) of every stored flow; ICMP port = type*256+code."""
    out = subprocess.run(
        ["nfdump", "-R", str(directory), "-q", "-N", "-o", "fmt:%pr|%dp|%pkt|%byt|%tsr"],
        capture_output=True, check=True, env={**os.environ, "TZ": "UTC"}, timeout=300,
    ).stdout.decode()  # fmt: skip
    flows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        port = parts[1]
        if "." in port:  # ICMP shown as type.code
            icmp_type, icmp_code = port.split(".")
            dport = int(icmp_type) * 256 + int(icmp_code)
        else:
            dport = int(port)
        flows.append((int(parts[0]), dport, int(parts[2]), int(parts[3]), float(parts[4])))
    return flows


def sums(rows: list[tuple[int, int, int, int]]) -> dict[str, object]:
    """Totals and per-(protocol, port) sums of (protocol, port, packets, bytes) rows."""
    packets: Counter[tuple[int, int]] = Counter()
    octets: Counter[tuple[int, int]] = Counter()
    for proto, port, pkts, byts in rows:
        packets[(proto, port)] += pkts
        octets[(proto, port)] += byts
    return {
        "flows": len(rows),
        "packets": sum(packets.values()),
        "bytes": sum(octets.values()),
        "per_port_packets": dict(packets),
        "per_port_bytes": dict(octets),
    }


def have(*tools: str) -> str | None:
    """The first tool missing from PATH (None when all are present)."""
    for tool in tools:
        if shutil.which(tool) is None:
            return tool
    return None
