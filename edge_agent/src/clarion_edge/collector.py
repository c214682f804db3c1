"""The running agent: UDP receivers -> decoder + aggregator -> graph builder + spool -> sender.

Decoding and aggregation (stage.py) run in a worker process by default (``worker = "process"``),
so they do not share the interpreter lock with the receivers, the builder and the sender; with
``worker = "thread"`` everything stays in one process.

Stages are threads joined by bounded queues. When the decoder falls behind, the receiver waits
for room instead of copying datagrams it cannot hand on (which would only steal the GIL from the
decoder): the kernel socket buffer absorbs the burst, and what overflows it is counted by the
kernel and logged (``kernel_drops``). Memory stays bounded either way. Closed windows are built
and spooled off the hot path, so building a large window does not stall decoding.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from clarion_edge import __version__
from clarion_edge.aggregator import AggregatorConfig, ClosedWindow
from clarion_edge.config import Settings
from clarion_edge.sender import Sender
from clarion_edge.seq import SeqStore
from clarion_edge.shipper import Shipper
from clarion_edge.spool import Spool
from clarion_edge.stage import FlowStage, now_ms, spawn_child
from clarion_edge.status import StatusServer
from clarion_edge.udp import drain, kernel_drops, open_udp, wait_readable

log = logging.getLogger(__name__)

DRAIN_BATCH = 1024
RATE_EVERY = 5.0  # seconds over which the status endpoint's rates are measured
_Batch = tuple[int, list[tuple[bytes, tuple[str, int]]]]


@dataclass
class Counters:
    datagrams: int = 0
    bytes: int = 0
    backpressure_s: float = 0.0
    windows_built: int = 0
    failed_datagrams: int = 0
    graphs_spooled: int = 0


class Agent:
    """Owns every stage; :meth:`start` then :meth:`stop` (which flushes open windows to the spool)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spool = Spool(
            settings.spool_dir,
            max_items=settings.spool_max_batches,
            max_bytes=settings.spool_max_bytes,
            policy="drop_newest" if settings.spool_full_policy == "drop_newest" else "drop_oldest",
        )
        for seq, agent_id in self.spool.recovered_agents.items():
            if agent_id != settings.agent_id:  # the server would refuse them forever and block the queue
                reason = f"spooled by agent {agent_id!r}, this agent is {settings.agent_id!r}: resend with its token"
                self.spool.reject(seq, {"outcome": "rejected", "error": reason})
        self.seqs = SeqStore(settings.spool_dir, floor=self.spool.max_seq)
        self.sender = Sender(settings.server, settings.token, timeout=settings.timeout, retries=settings.retries,
                             verify=settings.verify)  # fmt: skip
        self.shipper = Shipper(self.spool, self.seqs, self.sender)
        self.agg_config = AggregatorConfig(
            agent_id=settings.agent_id,
            window_s=settings.window,
            site_prefixes=settings.site_prefixes,
            max_keys=settings.max_keys,
            max_nodes=settings.max_nodes,
            max_edges=settings.max_edges,
        )
        self.stage = FlowStage(self.agg_config, settings.exporters, settings.switch_id)  # used in thread mode
        self._child: Any = None  # process mode: the worker process and its pipes
        self._child_status: dict[str, Any] = {}
        self.counters = Counters()
        self.started = time.time()
        self._rx: queue.Queue[_Batch | None] = queue.Queue(maxsize=settings.queue_batches)
        # A few closed windows at most: if building/spooling lags, the worker waits (memory stays bounded).
        self._closed: queue.Queue[ClosedWindow | None] = queue.Queue(maxsize=4)
        self._stop_rx = threading.Event()
        self.fatal = threading.Event()  # set when the agent cannot go on (its worker process died)
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.rates: dict[str, float] = {}
        self._status: StatusServer | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Bind every socket first (a taken port fails before anything runs), then start the stages."""
        try:
            for address in self.settings.listen:
                self._socks.append(open_udp(address, self.settings.rcvbuf))
            if self.settings.status_listen:
                self._status = StatusServer(self.settings.status_listen, self.status, self.dead_threads)
        except OSError:
            for sock in self._socks:
                sock.close()
            raise
        self.shipper.start()
        if self.settings.worker == "process":
            self._child = spawn_child(self.agg_config, self.settings.exporters, self.settings.switch_id)
            self._spawn(self._forward, "worker")
            self._spawn(self._collect, "collector")
        else:
            self._spawn(self._work, "worker")
        self._spawn(self._build, "builder")
        for sock in self._socks:
            self._spawn(lambda s=sock: self._receive(s), f"rx-{sock.getsockname()[1]}")
        self._spawn(self._monitor, "monitor")
        if self._status is not None:
            self._status.start()
        log.info(
            "clarion-edge %s agent %s: window %ss, server %s, spool %s (%d batches pending)",
            __version__, self.settings.agent_id, self.settings.window, self.settings.server,
            self.settings.spool_dir, self.spool.depth,
        )  # fmt: skip

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=f"clarion-edge-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, send_grace: float = 5.0) -> None:
        """Stop receiving, flush every open window into the spool, give the sender a moment, stop."""
        self._stop_rx.set()
        for t in self._threads:
            if "-rx-" in t.name:
                t.join(5)
        workers = [t for t in self._threads if t.name.endswith(("worker", "collector", "builder"))]
        while workers[0].is_alive():  # behind the receivers' last batches: the worker flushes, forwards None
            try:
                self._rx.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        for t in workers:
            t.join(120)
        if self._child is not None:
            self._child[0].join(10)
        deadline = time.monotonic() + send_grace
        while self.spool.depth and time.monotonic() < deadline:
            time.sleep(0.05)
        self.shipper.stop()
        if self._status is not None:
            self._status.stop()
        for s in self._socks:
            s.close()
        self.sender.close()
        log.info("stopped; %d batches left in the spool for the next start", self.spool.depth)

    # -- stages ------------------------------------------------------------------------------
    def _receive(self, sock: socket.socket) -> None:
        c = self.counters
        while not self._stop_rx.is_set():
            if not wait_readable(sock, 0.25):
                continue
            batch = drain(sock, DRAIN_BATCH)
            if not batch:
                continue
            with self._lock:
                c.datagrams += len(batch)
                c.bytes += sum(len(d) for d, _ in batch)
            item = (now_ms(), batch)
            while True:
                try:
                    self._rx.put(item, timeout=0.25)
                    break
                except queue.Full:  # the decoder is behind: leave the rest in the kernel buffer
                    c.backpressure_s += 0.25

    def _work(self) -> None:
        """Thread mode: decode and aggregate here."""
        while True:
            try:
                item = self._rx.get(timeout=0.25)
            except queue.Empty:
                self._emit(self.stage.poll(now_ms()))
                continue
            if item is None:
                self._emit(self.stage.flush(now_ms()))
                self._closed.put(None)
                return
            self._emit(self.stage.process(*item))

    def _forward(self) -> None:
        """Process mode: hand batches to the worker process (the pipe blocks when it is behind)."""
        _, inbox, _ = self._child
        while True:
            item = self._rx.get()
            try:
                inbox.send(("stop",) if item is None else ("batch", *item))
            except (BrokenPipeError, OSError):
                log.error("the worker process is gone; %s", "stopping" if item is None else "dropping a batch")
                if item is not None:
                    self.counters.failed_datagrams += len(item[1])
            if item is None:
                return

    def _collect(self) -> None:
        """Process mode: closed windows and status from the worker process."""
        proc, _, outbox = self._child
        while True:
            try:
                msg = outbox.recv()
            except (EOFError, OSError):
                proc.join(1)
                log.error("the worker process ended unexpectedly (exit code %s): stopping the agent", proc.exitcode)
                self.fatal.set()  # the CLI exits non-zero and the supervisor restarts us; the spool is safe
                break
            if msg[0] == "closed":
                self._closed.put(msg[1])
            elif msg[0] == "status":
                self._child_status = msg[1]
            else:  # stopped: every window is out
                break
        self._closed.put(None)

    def _emit(self, closed: list[ClosedWindow]) -> None:
        for w in closed:
            self._closed.put(w)

    def _build(self) -> None:
        while True:
            w = self._closed.get()
            if w is None:
                return
            try:
                graphs = w.build()
                seqs = self.shipper.submit(graphs)
            except Exception:  # a bug here must not stop the agent; the window is logged and counted
                log.exception("building window %s of switch %s failed", w.window, w.switch.switch_id)
                continue
            self.counters.windows_built += 1
            self.counters.graphs_spooled += len(seqs)
            log.info(
                "window %d-%d switch %s: %d FLOWS_TO edges in %d batch(es), seq %s",
                w.window.start, w.window.end, w.switch.switch_id, w.edge_count, len(graphs),
                f"{seqs[0]}..{seqs[-1]}" if seqs else "-",
            )  # fmt: skip

    def _monitor(self) -> None:
        """Every RATE_EVERY seconds: update the rates of the status; every log_every: a log line."""
        last = (time.monotonic(), 0, 0)
        records = 0
        next_log = time.monotonic() + self.settings.log_every
        while not self._stop_rx.wait(min(RATE_EVERY, self.settings.log_every)):
            t, c = time.monotonic(), self.counters
            records = int(self._stage_status()["decoder"]["records"])
            dt = max(t - last[0], 1e-9)
            self.rates = {
                "datagrams_per_s": round((c.datagrams - last[1]) / dt, 1),
                "records_per_s": round((records - last[2]) / dt, 1),
                "over_s": round(dt, 1),
            }
            last = (t, c.datagrams, records)
            if t >= next_log:
                next_log = t + self.settings.log_every
                log.info(
                    "rates: %.0f datagrams/s, %.0f records/s; kernel drops %s; receiver waited %.1f s; "
                    "spool %d batches; last send %s",
                    self.rates["datagrams_per_s"], self.rates["records_per_s"], self._kernel_drops(),
                    c.backpressure_s, self.spool.depth, (self.shipper.last_result or {}).get("outcome", "-"),
                )  # fmt: skip

    def _kernel_drops(self) -> int | None:
        drops = [kernel_drops(s) for s in self._socks]
        return None if any(d is None for d in drops) else sum(d for d in drops if d is not None)

    # -- status ------------------------------------------------------------------------------
    def _stage_status(self) -> dict[str, Any]:
        # In process mode the local stage stays idle: its zeros stand in until the worker process reports.
        st = (self._child_status if self._child is not None else None) or self.stage.status()
        return {**st, "failed_datagrams": st.get("failed_datagrams", 0) + self.counters.failed_datagrams}

    def dead_threads(self) -> list[str]:
        """Stage threads that ended while the agent runs (a bug): /healthz then answers 503."""
        if self._stop_rx.is_set():
            return []
        dead = [t.name for t in self._threads if not t.is_alive()]
        if not self.shipper.alive:
            dead.append("clarion-edge-shipper")
        if self._child is not None and not self._child[0].is_alive():
            dead.append("clarion-edge-worker-process")
        return dead

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {
            "dead_threads": self.dead_threads(),
            "agent_id": self.settings.agent_id,
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "rates": self.rates,
            "receiver": {
                "datagrams": c.datagrams,
                "bytes": c.bytes,
                "backpressure_s": c.backpressure_s,
                "kernel_drops": self._kernel_drops(),
                "queue_depth": self._rx.qsize(),
            },
            **self._stage_status(),
            "builder": {"windows": c.windows_built, "graphs_spooled": c.graphs_spooled},
            "spool": self.spool.status(),
            "sender": self.shipper.status(),
        }
