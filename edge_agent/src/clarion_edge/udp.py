"""UDP listening sockets for NetFlow: IPv4 or IPv6, a large receive buffer, batched draining.

The kernel buffer absorbs bursts while Python is busy; it is raised as far as the host allows
(SO_RCVBUFFORCE as root, else SO_RCVBUF up to net.core.rmem_max) and the granted size logged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import socket
from pathlib import Path

from clarion_edge.config import parse_hostport

log = logging.getLogger(__name__)

_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
MAX_DATAGRAM = 65_535


def open_udp(address: str, rcvbuf: int) -> socket.socket:
    """Bind a non-blocking UDP socket on ``host:port`` / ``[v6]:port``; ``[::]`` also takes IPv4."""
    host, port = parse_hostport(address, what="listen address")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen for NetFlow on UDP {address}: {exc.strerror}") from exc
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    log.info("listening for NetFlow on UDP %s (receive buffer %d bytes)", address, granted)
    if granted < rcvbuf:
        log.warning(
            "UDP receive buffer is %d bytes, below the %d asked: raise net.core.rmem_max or run with "
            "CAP_NET_ADMIN, or bursts will be dropped by the kernel", granted, rcvbuf,
        )  # fmt: skip
    return sock


def exporter_name(addr: tuple[str, int] | tuple[str, int, int, int]) -> tuple[str, str]:
    """(exporter key "ip:port", exporter ip) of a sender address; IPv4-mapped IPv6 shown as IPv4, no zone."""
    host = addr[0].split("%", 1)[0]  # drop an IPv6 zone (fe80::1%eth0)
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return (f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"), host


def drain(sock: socket.socket, limit: int) -> list[tuple[bytes, tuple[str, int]]]:
    """Read up to ``limit`` datagrams that are already queued; never blocks."""
    out: list[tuple[bytes, tuple[str, int]]] = []
    recv = sock.recvfrom
    try:
        for _ in range(limit):
            out.append(recv(MAX_DATAGRAM))
    except (BlockingIOError, InterruptedError):
        pass
    return out


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on this socket (buffer full), from /proc/net/udp[6]; None if unknown."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 13 and parts[9] == inode:
                return int(parts[-1])
    return None
