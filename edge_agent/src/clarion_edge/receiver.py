"""The receive loop: it does nothing but drain the UDP sockets into ring slots and hand them on.

It runs in a process of its own by default (``worker = "process"``): it then never waits for the
decoder's interpreter lock, so a slow batch cannot leave the socket undrained; in thread mode it
is a thread of the agent. Datagrams go straight from the kernel into preallocated shared memory
(``recvfrom_into``); a slot is handed over when it is full or LINGER after its first datagram.
"""

from __future__ import annotations

import array
import logging
import multiprocessing
import os
import select
import signal
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

from clarion_edge import ring as r
from clarion_edge.ring import HEADROOM, Handoff, SlotRing

log = logging.getLogger(__name__)

LINGER_NS = 10_000_000  # a slot waits at most 10 ms for more datagrams before it is handed over
POLL_MS = 250  # how often an idle receiver looks at its stop flag
MAX_PER_SLOT = 8192
COALESCE_BELOW, COALESCE_S = 32, 0.001


class Receiver:
    """Drains ``socks`` into ``ring``; ``ready`` carries Handoffs (then None when stopping), ``free`` slots back."""

    def __init__(self, socks: list[socket.socket], ring: SlotRing, ready: Connection, free: Connection,
                 parent: int | None = None) -> None:  # fmt: skip
        self.socks, self.ring, self.ready, self.free = socks, ring, ready, free
        self.parent = parent  # process mode: the agent's pid; when it is gone (kill -9) the receiver ends too
        self.c = ring.counters
        self._free = list(range(ring.slots))
        self._slot = -1
        self._view: memoryview | None = None
        self._off = 0
        self._started = 0
        self._lengths = array.array("H")  # a UDP payload is at most 65,507 bytes
        self._senders = array.array("H")
        self._addrs: dict[Any, int] = {}

    def run(self) -> None:
        """Until the STOP counter is set: poll, drain, hand over; then hand over the rest and say None."""
        poller = select.poll()
        by_fd = {}
        for s in self.socks:
            s.setblocking(False)
            poller.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
        c = self.c
        c[r.ALIVE] = 1
        try:
            while not c[r.STOP]:
                if self.parent is not None and os.getppid() != self.parent:
                    log.error("the agent process is gone: the receiver stops")
                    return
                wait = POLL_MS
                if self._lengths:
                    wait = max(1, (self._started + LINGER_NS - time.monotonic_ns()) // 1_000_000)
                events = poller.poll(wait)
                before = c[r.DATAGRAMS]
                for fd, _ in events:
                    self._drain(by_fd[fd])
                if not events:
                    self._collect_free()
                elif c[r.DATAGRAMS] - before < COALESCE_BELOW:
                    # A trickle: let a few more arrive before the next poll (three syscalls per datagram
                    # otherwise). The kernel buffer holds a millisecond of any rate many times over.
                    time.sleep(COALESCE_S)
                if self._lengths and time.monotonic_ns() - self._started >= LINGER_NS:
                    self._handoff()
            if self._lengths:
                self._handoff()
            self.ready.send(None)
        except (BrokenPipeError, EOFError, OSError) as exc:  # the decoder is gone: nothing to hand to
            if not c[r.STOP]:
                log.error("the receiver stops: the decoder's pipe is gone (%s)", exc)
        finally:
            c[r.ALIVE] = 0

    def _drain(self, sock: socket.socket) -> None:
        """Read what is queued on ``sock`` (at most a few slots' worth, so other sockets get their turn).

        The hot loop of the agent: locals only, counters published once per slot.
        """
        recv, flags, limit = sock.recvfrom_into, socket.MSG_DONTWAIT, self.ring.slot_bytes - HEADROOM
        for _ in range(4):
            if self._view is None:
                self._next_slot()
                if self._view is None:  # stopping while every slot was taken
                    return
            view, off, lengths, senders, addrs = self._view, self._off, self._lengths, self._senders, self._addrs
            start_off, start_n = off, len(lengths)
            empty = False
            while off <= limit and len(lengths) < MAX_PER_SLOT:
                try:
                    n, addr = recv(view[off:], HEADROOM, flags)
                except (BlockingIOError, InterruptedError):
                    empty = True
                    break
                idx = addrs.get(addr)
                if idx is None:
                    idx = addrs[addr] = len(addrs)
                lengths.append(n)
                senders.append(idx)
                off += n
            if start_n == 0 and len(lengths):
                self._started = time.monotonic_ns()
            self._off = off
            self.c[r.DATAGRAMS] += len(lengths) - start_n
            self.c[r.BYTES] += off - start_off
            if empty:
                return
            self._handoff()  # the slot is full

    def _next_slot(self) -> None:
        """Take a free slot; when none is free, wait for one (counted) while the kernel buffer holds the rest."""
        c = self.c
        self._collect_free()
        if not self._free:
            c[r.FULL_WAITS] += 1
            t0 = time.monotonic_ns()
            while not c[r.STOP] and not self.free.poll(POLL_MS / 1000):
                pass
            c[r.FULL_NS] += time.monotonic_ns() - t0
            if not self.free.poll(0):
                return
            self._free.append(self.free.recv())
        self._slot = self._free.pop()
        self._view = self.ring.slot_view(self._slot)
        self._off = 0
        c[r.IN_FLIGHT] = self.ring.slots - len(self._free) - 1  # handed over, not back yet (this one is ours)

    def _collect_free(self) -> None:
        while self.free.poll(0):
            self._free.append(self.free.recv())
        self.c[r.IN_FLIGHT] = self.ring.slots - len(self._free) - (self._view is not None)

    def _handoff(self) -> None:
        senders = self._senders.tobytes() if len(self._addrs) > 1 else b""  # one exporter: no per-datagram index
        h = Handoff(self._slot, time.time_ns() // 1_000_000, self._lengths.tobytes(), senders, tuple(self._addrs))
        t0 = time.monotonic_ns()
        self.ready.send(h)  # blocks only when the decoder is far behind: a wait like a full ring
        waited = time.monotonic_ns() - t0
        if waited > 1_000_000:
            self.c[r.FULL_WAITS] += 1
            self.c[r.FULL_NS] += waited
        self.c[r.HANDOFFS] += 1
        self._view = None
        self._lengths = array.array("H")
        self._senders = array.array("H")
        self._addrs = {}


def receiver_main(socks: list[socket.socket], ring_name: str, slots: int, slot_bytes: int, ready: Connection,
                  free: Connection, log_level: int, parent: int) -> None:  # fmt: skip
    """Entry point of the receiver process. It ignores SIGTERM/SIGINT: the parent stops it (STOP counter)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[receiver]: %(message)s")
    ring = SlotRing(slots, slot_bytes, name=ring_name)
    try:
        Receiver(socks, ring, ready, free, parent).run()
    finally:
        ring.close()


def spawn_receiver(socks: list[socket.socket], ring: SlotRing, ready: Connection, free: Connection) -> Any:
    """Start the receiver process on the already bound sockets (spawned: the parent already runs threads)."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=receiver_main,
        args=(socks, ring.name, ring.slots, ring.slot_bytes, ready, free, logging.getLogger().level, os.getpid()),
        name="clarion-edge-receiver-process",
        daemon=True,
    )
    proc.start()
    return proc
