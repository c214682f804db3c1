"""Preallocated slots between the UDP receiver and the decoder, in shared memory (or local, for a thread).

The receiver writes datagrams straight into a free slot with ``recvfrom_into`` and hands the slot
over with a small message on a pipe (slot number, datagram lengths, senders); the decoder copies
the slot out in one go and hands it back at once. Memory is fixed at start: when every slot is
taken, the receiver waits (counted) and the kernel socket buffer absorbs the burst. Pipes carry
the handoff, so no lock-free tricks on shared memory are needed (a syscall orders the writes).
"""

from __future__ import annotations

import array
import contextlib
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

SLOT_BYTES = 1 << 20
#: Room a slot must have left before another read: the largest UDP payload.
HEADROOM = 65_536
HEADER_BYTES = 4096
Addr = Any  # (host, port) or (host, port, flowinfo, scope_id)
Datagrams = list[tuple[bytes, Addr]]

# Counters in the header (u64 each); the receiver writes, anyone reads (figures for the status).
DATAGRAMS, BYTES, HANDOFFS, FULL_WAITS, FULL_NS, IN_FLIGHT, STOP, ALIVE = range(8)
COUNTERS = ("datagrams", "bytes", "handoffs", "full_waits", "full_ns", "in_flight")


@dataclass(frozen=True)
class Handoff:
    """One filled slot: datagram i is ``lengths[i]`` bytes from ``addrs[senders[i]]``, packed from offset 0."""

    slot: int
    received_ms: int
    lengths: bytes  # array("H")
    senders: bytes  # array("H"): index into addrs; empty when every datagram came from addrs[0]
    addrs: tuple[Addr, ...]


class SlotRing:
    """``slots`` slots of ``slot_bytes`` after a counter header; shared (named) or in this process only."""

    def __init__(self, slots: int, slot_bytes: int = SLOT_BYTES, *, shared: bool = True, name: str | None = None):
        if not 2 <= slots <= 1024 or slot_bytes < 2 * HEADROOM:
            raise ValueError(f"a ring needs 2..1024 slots of at least {2 * HEADROOM} bytes")
        self.slots, self.slot_bytes = slots, slot_bytes
        size = HEADER_BYTES + slots * slot_bytes
        self._shm: shared_memory.SharedMemory | None = None
        self._owner = name is None
        if shared:
            try:
                self._shm = shared_memory.SharedMemory(name=name, create=name is None, size=size if name is None else 0)
            except OSError as exc:
                why = f"cannot allocate {size >> 20} MiB of shared memory for the receive ring"
                raise OSError(exc.errno, f"{why} (/dev/shm too small? lower queue_batches): {exc.strerror}") from exc
            buf: Any = self._shm.buf
        else:
            buf = memoryview(bytearray(size))
        self.buf: memoryview = buf
        self.counters = self.buf[:HEADER_BYTES].cast("Q")

    @property
    def name(self) -> str | None:
        return self._shm.name if self._shm is not None else None

    def slot_view(self, slot: int) -> memoryview:
        start = HEADER_BYTES + slot * self.slot_bytes
        return self.buf[start : start + self.slot_bytes]

    def take(self, h: Handoff) -> Datagrams:
        """Copy the datagrams of a handed-over slot out of the ring (the slot can then be reused)."""
        lengths = array.array("H")
        lengths.frombytes(h.lengths)
        start = HEADER_BYTES + h.slot * self.slot_bytes
        blob = bytes(self.buf[start : start + sum(lengths)])
        out: Datagrams = []
        off = 0
        if not h.senders:
            addr = h.addrs[0]
            for n in lengths:
                out.append((blob[off : off + n], addr))
                off += n
            return out
        senders = array.array("H")
        senders.frombytes(h.senders)
        addrs = h.addrs
        for n, s in zip(lengths, senders, strict=True):
            out.append((blob[off : off + n], addrs[s]))
            off += n
        return out

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "slots": self.slots,
            "slot_bytes": self.slot_bytes,
            "slots_in_use": int(c[IN_FLIGHT]),
            "handoffs": int(c[HANDOFFS]),
            "full_waits": int(c[FULL_WAITS]),
            "full_wait_s": round(c[FULL_NS] / 1e9, 3),
        }

    def close(self) -> None:
        """Release the mapping (the counters keep their last values); the creator also removes the shared segment."""
        final = bytearray(self.counters)
        self.counters.release()
        self.counters = memoryview(final).cast("Q")
        if self._shm is not None:
            with contextlib.suppress(BufferError):
                self._shm.close()
            if self._owner:
                with contextlib.suppress(FileNotFoundError):
                    self._shm.unlink()


class RingReader:
    """The decoder's side: batches of handed-over slots, each slot returned as soon as it is copied out."""

    def __init__(self, ring: SlotRing, ready: Connection, free: Connection, max_slots: int = 16) -> None:
        self.ring, self.ready, self.free, self.max_slots = ring, ready, free, max_slots

    def get(self, timeout: float) -> tuple[list[tuple[int, Datagrams]], bool]:
        """(batches of (received_ms, datagrams), stopped): waits up to ``timeout`` for the first slot.

        ``stopped`` is true once the receiver said it stopped or is gone (its pipe closed).
        """
        out: list[tuple[int, Datagrams]] = []
        try:
            if not self.ready.poll(timeout):
                return out, False
            while len(out) < self.max_slots:
                msg = self.ready.recv()
                if msg is None:
                    return out, True
                out.append((msg.received_ms, self.ring.take(msg)))
                with contextlib.suppress(OSError):  # a receiver that stopped takes no slots back
                    self.free.send(msg.slot)
                if not self.ready.poll(0):
                    break
        except (EOFError, OSError):
            return out, True
        return out, False


def now_ns() -> int:
    return time.monotonic_ns()
