"""The decode + aggregate stage: datagram batches in, closed windows out.

One class, run either in the agent's worker thread or in a child process of its own
(``worker = "process"``), where it has its own interpreter lock and can use a second core. Either
way it reads the receiver's ring (ring.py), so the receive loop never waits for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections import defaultdict
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from clarion_edge import wire
from clarion_edge.aggregator import Aggregator, AggregatorConfig, ClosedWindow
from clarion_edge.config import IDENT
from clarion_edge.netflow.decoder import Decoder
from clarion_edge.ring import RingReader, SlotRing
from clarion_edge.udp import exporter_name

log = logging.getLogger(__name__)

Datagrams = list[tuple[bytes, tuple[str, int]]]
STATUS_EVERY = 0.25


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class FlowStage:
    """Decoder + aggregator with the exporter -> switch mapping; not thread-safe (one owner)."""

    def __init__(self, config: AggregatorConfig, exporters: Mapping[str, str], switch_id: str) -> None:
        self.aggregator = Aggregator(config)
        self.window_ms = max(1, int(config.window_s * 1000))
        self.decoder = Decoder()
        self.exporters = dict(exporters)
        self.switch_id = switch_id
        self.records = 0
        self.failed_datagrams = 0
        self.builder_wait_s = 0.0
        self._switches: dict[str, wire.SwitchInfo] = {}
        self._names: dict[tuple[str, int], tuple[str, str]] = {}

    def process(self, received: int, batch: Datagrams) -> list[ClosedWindow]:
        """Decode a batch (grouped per exporter) and aggregate it; a bug is logged and counted, never raised."""
        try:
            return self._process(received, batch)
        except Exception:
            log.exception("processing a batch of %d datagrams failed", len(batch))
            self.failed_datagrams += len(batch)
            return []

    def process_many(self, batches: list[tuple[int, Datagrams]]) -> list[ClosedWindow]:
        """Several ring slots at once: slots received in the same window are decoded as one batch.

        A decoder that fell behind finds many small slots waiting; one call per window keeps its
        per-call cost from growing exactly when it can least afford it.
        """
        out: list[ClosedWindow] = []
        group: Datagrams = []
        key = last = 0
        for received, batch in batches:
            if group and received // self.window_ms != key:
                out += self.process(last, group)
                group = []
            group += batch
            key, last = received // self.window_ms, received
        if group:
            out += self.process(last, group)
        return out

    def _process(self, received: int, batch: Datagrams) -> list[ClosedWindow]:
        by_exporter: dict[str, list[tuple[bytes, str, int]]] = defaultdict(list)
        ips: dict[str, str] = {}
        names = self._names
        for data, addr in batch:
            name = names.get(addr)
            if name is None:
                if len(names) > 65_536:  # exporters' source ports churn: keep the cache bounded
                    names.clear()
                name = names[addr] = exporter_name(addr)
            by_exporter[name[0]].append((data, name[0], received))
            ips[name[0]] = name[1]
        out: list[ClosedWindow] = []
        for key, items in by_exporter.items():
            recs = self.decoder.decode_batch(items)
            self.records += len(recs)
            out += self.aggregator.add(self._switch(ips[key]), recs, received)
        return out

    def _switch(self, ip: str) -> wire.SwitchInfo:
        info = self._switches.get(ip)
        if info is None:
            sid = self.exporters.get(ip) or self.switch_id or ip
            if not IDENT.match(sid):  # "::1" cannot start an id: the wire wants a leading letter or digit
                sid = f"exporter-{sid}"
            if len(self._switches) > 65_536:
                self._switches.clear()
            info = self._switches[ip] = wire.SwitchInfo(switch_id=sid, mgmt_ip=wire.normalise_ip(ip))
        return info

    def poll(self, now: int) -> list[ClosedWindow]:
        return self.aggregator.poll(now)

    def flush(self, now: int) -> list[ClosedWindow]:
        return self.aggregator.flush_all(now)

    def status(self) -> dict[str, Any]:
        return {
            "decoder": {"records": self.records, "exporters": self.decoder.stats},
            "aggregator": self.aggregator.status(),
            "failed_datagrams": self.failed_datagrams,
            # time spent handing closed windows to the builder: mostly waiting when it lags (bounded queue)
            "builder_wait_s": round(self.builder_wait_s, 3),
        }


def child_main(ring_spec: tuple[str, int, int], ready: Connection, free: Connection, outbox: Connection,
               config: AggregatorConfig, exporters: dict[str, str], switch_id: str,
               log_level: int, parent: int) -> None:  # fmt: skip
    """Entry point of the worker process: slots from the receiver's ring in; windows and status out.

    It ignores SIGTERM/SIGINT (systemd signals the whole group): it stops when the receiver says it
    stopped (or is gone), after the last datagrams, so open windows are flushed into the spool, not lost.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    name, slots, slot_bytes = ring_spec
    ring = SlotRing(slots, slot_bytes, name=name)
    reader = RingReader(ring, ready, free)
    stage = FlowStage(config, exporters, switch_id)
    next_status = 0.0
    try:
        while os.getppid() == parent:  # after kill -9 of the agent nobody takes windows: end
            batches, stopped = reader.get(STATUS_EVERY)
            closed = stage.process_many(batches)
            if not batches:
                closed += stage.poll(now_ms())
            if stopped:
                closed += stage.flush(now_ms())
            t0 = time.monotonic()
            for w in closed:
                outbox.send(("closed", w))
            stage.builder_wait_s += time.monotonic() - t0 if closed else 0.0
            if stopped:
                outbox.send(("status", stage.status()))
                outbox.send(("stopped",))
                return
            if closed or time.monotonic() >= next_status:
                outbox.send(("status", stage.status()))
                next_status = time.monotonic() + STATUS_EVERY
    except (BrokenPipeError, OSError):  # the parent is gone: nobody to hand windows to
        return
    finally:
        ring.close()


def spawn_child(ring: SlotRing, ready: Connection, free: Connection, config: AggregatorConfig,
                exporters: Mapping[str, str], switch_id: str) -> tuple[Any, Connection]:  # fmt: skip
    """Start the worker process (spawned: the parent already runs threads); return (process, outbox)."""
    ctx = multiprocessing.get_context("spawn")
    parent_in, child_out = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=child_main,
        args=((ring.name, ring.slots, ring.slot_bytes), ready, free, child_out, config, dict(exporters), switch_id,
              logging.getLogger().level, os.getpid()),
        name="clarion-edge-worker-process",
        daemon=True,
    )  # fmt: skip
    proc.start()
    child_out.close()
    return proc, parent_in
