"""Drain the spool to the server in seq order, forever, losing nothing.

The sender retries a single POST a few times; the shipper keeps the batch spooled across longer
outages and pauses (capped exponential backoff) between rounds, so a server away for hours
costs disk, not data. It also spools: ``submit`` assigns seqs, seals and writes before any send.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import msgspec

from clarion_edge import wire
from clarion_edge.sender import Sender, SendResult
from clarion_edge.seq import SeqStore
from clarion_edge.spool import Spool

log = logging.getLogger(__name__)


class Shipper:
    """Owns seq allocation, spooling and the send loop of one agent."""

    def __init__(
        self,
        spool: Spool,
        seqs: SeqStore,
        sender: Sender,
        *,
        pause_min: float = 1.0,
        pause_max: float = 60.0,
    ) -> None:
        self.spool = spool
        self.seqs = seqs
        self.sender = sender
        self.pause_min = pause_min
        self.pause_max = pause_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_result: dict[str, Any] | None = None
        self.sent_applied = 0
        self.sent_duplicate = 0

    def submit(self, graphs: list[wire.EdgeGraph]) -> list[int]:
        """Give the batches of one window consecutive seqs, seal and spool them; return the seqs stored."""
        if not graphs:
            return []
        stored = []
        for seq, graph in zip(self.seqs.reserve(len(graphs)), graphs, strict=True):
            sealed = msgspec.structs.replace(graph, seq=seq, digest=None).sealed()
            if self.spool.put(sealed):
                stored.append(seq)
        return stored

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="clarion-edge-shipper", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.sender.stop()
        self.spool.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._run()
            except Exception:  # disk errors and bugs must not end delivery: log, wait, go on
                log.exception("shipper error; retrying in %.0f s", self.pause_max)
                self._stop.wait(self.pause_max)

    def _run(self) -> None:
        pause = self.pause_min
        while not self._stop.is_set():
            item = self.spool.oldest(timeout=0.5)
            if item is None:
                continue
            seq, body = item
            result = self.sender.send_bytes(body, label=f"seq {seq}")
            self._record(seq, result)
            if result.acked:
                self.spool.ack(seq)
                pause = self.pause_min
            elif result.outcome == "rejected":
                self.spool.reject(seq, result.as_dict())
                pause = self.pause_min
            else:
                if result.outcome == "refused":
                    log.error("server refused batch seq %d (%s): check the token and server URL", seq, result.error)
                else:
                    log.warning(
                        "server unavailable for seq %d (%s); %d batches spooled", seq, result.error, self.spool.depth
                    )
                self._stop.wait(pause)
                pause = min(self.pause_max, pause * 2)

    def _record(self, seq: int, result: SendResult) -> None:
        if result.outcome == "applied":
            self.sent_applied += 1
        elif result.outcome == "duplicate":
            self.sent_duplicate += 1
        self.last_result = {"seq": seq, "at_ms": int(time.time() * 1000), **result.as_dict()}

    def status(self) -> dict[str, Any]:
        return {
            "last_seq": self.seqs.last,
            "applied": self.sent_applied,
            "duplicate": self.sent_duplicate,
            "last_result": self.last_result,
        }
