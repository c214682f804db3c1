"""UDP listening sockets for NetFlow: IPv4 or IPv6, a large receive buffer, the kernel's drop counter.

The kernel buffer absorbs bursts while the agent is busy; it is raised as far as the host allows
(SO_RCVBUFFORCE as root, else SO_RCVBUF up to net.core.rmem_max) and the granted size logged.
What overflows it the kernel counts per socket: read here so loss in the kernel shows apart from
loss in the agent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clarion_edge.config import parse_hostport

log = logging.getLogger(__name__)

_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass
class Listener:
    """A bound NetFlow socket and the receive buffer the kernel actually granted it."""

    address: str
    sock: socket.socket
    asked: int
    granted: int  # as getsockopt reports it: Linux doubles the asked value for its bookkeeping
    forced: bool  # SO_RCVBUFFORCE worked (root / CAP_NET_ADMIN), so net.core.rmem_max did not apply

    @property
    def capped(self) -> bool:
        return self.granted < self.asked * (2 if sys.platform == "linux" else 1)


def open_udp(address: str, receive_buffer: int) -> Listener:
    """Bind a UDP socket on ``host:port`` / ``[v6]:port`` (``[::]`` also takes IPv4) with a large receive buffer.

    The buffer is asked with SO_RCVBUFFORCE (root or CAP_NET_ADMIN may exceed net.core.rmem_max), else
    SO_RCVBUF, which the kernel silently caps at net.core.rmem_max: the granted size is read back,
    logged, and a cap is a warning naming the sysctl to raise.
    """
    host, port = parse_hostport(address, what="listen address")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    forced = False
    try:
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, receive_buffer)
            forced = True
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen for NetFlow on UDP {address}: {exc.strerror}") from exc
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    lis = Listener(address, sock, receive_buffer, granted, forced)
    log.info(
        "listening for NetFlow on UDP %s: receive buffer %d bytes asked, %d granted by the kernel (%s)",
        address, receive_buffer, granted, "SO_RCVBUFFORCE" if forced else "SO_RCVBUF, capped by net.core.rmem_max",
    )  # fmt: skip
    if lis.capped:
        log.warning(
            "UDP %s: the kernel granted a %d-byte receive buffer, less than the %d asked (receive_buffer): "
            "bursts beyond it will be dropped by the kernel (kernel_drops in the status). Raise the host limit: "
            "sysctl -w net.core.rmem_max=%d (and persist it in /etc/sysctl.d/90-clarion-edge.conf), "
            "or run the agent with CAP_NET_ADMIN",
            address, granted, receive_buffer, receive_buffer,
        )  # fmt: skip
    return lis


def exporter_name(addr: tuple[str, int] | tuple[str, int, int, int]) -> tuple[str, str]:
    """(exporter key "ip:port", exporter ip) of a sender address; IPv4-mapped IPv6 shown as IPv4, no zone."""
    host = addr[0].split("%", 1)[0]  # drop an IPv6 zone (fe80::1%eth0)
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return (f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"), host


def kernel_counters(socks: Sequence[socket.socket]) -> list[tuple[int, int] | None]:
    """(datagrams dropped, bytes queued now) per socket, from /proc/net/udp[6]; None where unknown.

    The drop counter is the kernel's own (buffer full, or a bad checksum): the loss the agent never saw.
    """
    inodes: list[str | None] = []
    for sock in socks:
        try:
            inodes.append(str(os.fstat(sock.fileno()).st_ino))
        except OSError:
            inodes.append(None)
    found: dict[str, tuple[int, int]] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) >= 13 and parts[9] in inodes:
                found[parts[9]] = (int(parts[-1]), int(parts[4].partition(":")[2], 16))
    return [found.get(i) if i is not None else None for i in inodes]
