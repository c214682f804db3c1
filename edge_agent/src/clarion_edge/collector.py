"""The running agent: UDP receiver -> ring -> decoder + aggregator -> graph builder + spool -> sender.

The receive loop (receiver.py) does nothing but drain the sockets into a fixed ring of shared
memory slots (ring.py); decoding and aggregation (stage.py) read the ring. By default
(``worker = "process"``) each runs in a process of its own, so neither waits for the other's
interpreter lock nor for the builder and sender here; with ``worker = "thread"`` all are threads.

Memory is bounded everywhere: when every ring slot waits for the decoder the receiver waits
(counted), the kernel socket buffer absorbs the burst, and what overflows it the kernel counts
(``kernel_drops``, logged as a warning). Closed windows are built and spooled off the hot path.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from clarion_edge import __version__
from clarion_edge import ring as ring_mod
from clarion_edge.aggregator import AggregatorConfig, ClosedWindow
from clarion_edge.config import Settings
from clarion_edge.receiver import Receiver, spawn_receiver
from clarion_edge.ring import RingReader, SlotRing
from clarion_edge.sender import Sender
from clarion_edge.seq import SeqStore
from clarion_edge.shipper import Shipper
from clarion_edge.spool import Spool
from clarion_edge.stage import FlowStage, now_ms, spawn_child
from clarion_edge.status import StatusServer
from clarion_edge.udp import Listener, kernel_counters, open_udp

log = logging.getLogger(__name__)

RATE_EVERY = 5.0  # seconds over which the status endpoint's rates are measured


@dataclass
class Counters:
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
        self.ring: SlotRing | None = None
        self._receiver: Any = None  # process mode: the receiver process
        self._reader: RingReader | None = None  # thread mode: the worker thread's side of the ring
        # A few closed windows at most: if building/spooling lags, the worker waits (memory stays bounded).
        self._closed: queue.Queue[ClosedWindow | None] = queue.Queue(maxsize=4)
        self._stop_rx = threading.Event()
        self.fatal = threading.Event()  # set when the agent cannot go on (its worker process died)
        self._listeners: list[Listener] = []
        self._drops_seen = 0
        self._threads: list[threading.Thread] = []
        self.rates: dict[str, float] = {}
        self._status: StatusServer | None = None
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Bind every socket first (a taken port fails before anything runs), then start the stages."""
        try:
            for address in self.settings.listen:
                self._listeners.append(open_udp(address, self.settings.receive_buffer))
            if self.settings.status_listen:
                self._status = StatusServer(self.settings.status_listen, self.status, self.dead_threads)
            self.ring = SlotRing(self.settings.queue_batches, shared=self.settings.worker == "process")
        except OSError:
            for lis in self._listeners:
                lis.sock.close()
            raise
        ctx = multiprocessing.get_context("spawn")
        ready_r, ready_w = ctx.Pipe(duplex=False)
        free_r, free_w = ctx.Pipe(duplex=False)
        socks = [lis.sock for lis in self._listeners]
        self.shipper.start()
        if self.settings.worker == "process":
            self._receiver = spawn_receiver(socks, self.ring, ready_w, free_r)
            self._child = spawn_child(self.ring, ready_r, free_w, self.agg_config, self.settings.exporters,
                                      self.settings.switch_id)  # fmt: skip
            for end in (ready_r, ready_w, free_r, free_w):  # the children hold them: EOF when one dies
                end.close()
            self._spawn(self._collect, "collector")
        else:
            self._reader = RingReader(self.ring, ready_r, free_w)
            receiver = Receiver(socks, self.ring, ready_w, free_r)
            self._spawn(receiver.run, "receiver")
            self._spawn(self._work, "worker")
        self._spawn(self._build, "builder")
        self._spawn(self._monitor, "monitor")
        if self._status is not None:
            self._status.start()
        log.info(
            "clarion-edge %s agent %s: window %ss, server %s, spool %s (%d batches pending); receiver and "
            "decoder in %s mode, ring of %d slots of %d KiB",
            __version__, self.settings.agent_id, self.settings.window, self.settings.server,
            self.settings.spool_dir, self.spool.depth, self.settings.worker, self.ring.slots,
            self.ring.slot_bytes >> 10,
        )  # fmt: skip

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=f"clarion-edge-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, send_grace: float = 5.0) -> None:
        """Stop receiving, flush every open window into the spool, give the sender a moment, stop."""
        self._stop_rx.set()
        if self.ring is not None:
            self.ring.counters[ring_mod.STOP] = 1  # the receiver hands over its last slot and says so
        for t in self._threads:
            if t.name.endswith(("receiver", "worker", "collector", "builder")):
                t.join(120)
        for proc in (self._receiver, self._child[0] if self._child else None):
            if proc is not None:
                proc.join(10)
        deadline = time.monotonic() + send_grace
        while self.spool.depth and time.monotonic() < deadline:
            time.sleep(0.05)
        self.shipper.stop()
        if self._status is not None:
            self._status.stop()
        for lis in self._listeners:
            lis.sock.close()
        if self.ring is not None and not any(t.is_alive() for t in self._threads if t.name.endswith("receiver")):
            self.ring.close()
        self.sender.close()
        log.info("stopped; %d batches left in the spool for the next start", self.spool.depth)

    # -- stages ------------------------------------------------------------------------------
    def _work(self) -> None:
        """Thread mode: decode and aggregate here, from the ring."""
        assert self._reader is not None
        while True:
            batches, stopped = self._reader.get(0.25)
            self._emit(self.stage.process_many(batches))
            if not batches:
                self._emit(self.stage.poll(now_ms()))
            if stopped:
                self._emit(self.stage.flush(now_ms()))
                self._closed.put(None)
                return

    def _collect(self) -> None:
        """Process mode: closed windows and status from the worker process."""
        proc, outbox = self._child
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
                if not self._stop_rx.is_set():  # not asked to: the receiver process is gone
                    if self._receiver is not None:
                        self._receiver.join(1)  # reap it, so its exit code and liveness are known before we stop
                    log.error("the receiver process ended unexpectedly (exit code %s): stopping the agent",
                              self._receiver.exitcode if self._receiver is not None else None)  # fmt: skip
                    self.fatal.set()
                break
        self._closed.put(None)

    def _emit(self, closed: list[ClosedWindow]) -> None:
        t0 = time.monotonic()
        for w in closed:
            self._closed.put(w)  # blocks while the builder lags: counted, memory stays bounded
        if closed:
            self.stage.builder_wait_s += time.monotonic() - t0

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
        """Every RATE_EVERY seconds: rates for the status, a warning if the kernel dropped; every log_every a line."""
        last = (time.monotonic(), 0, 0)
        next_log = time.monotonic() + self.settings.log_every
        while not self._stop_rx.wait(min(RATE_EVERY, self.settings.log_every)):
            t, rx = time.monotonic(), self._receiver_counts()
            records = int(self._stage_status()["decoder"]["records"])
            dt = max(t - last[0], 1e-9)
            self.rates = {
                "datagrams_per_s": round((rx["datagrams"] - last[1]) / dt, 1),
                "records_per_s": round((records - last[2]) / dt, 1),
                "over_s": round(dt, 1),
            }
            last = (t, rx["datagrams"], records)
            kernel = self._kernel()
            drops = kernel["drops"]
            if drops is not None and drops > self._drops_seen:
                log.warning(
                    "the kernel dropped %d NetFlow datagrams in the last %.0f s (%d since start): the socket "
                    "buffer overflowed before the agent read it. Agent side: ring waits %d (%.1f s), decoder %.0f "
                    "records/s, decoder waited for the builder %.1f s. Give the agent more CPU, or a larger "
                    "receive_buffer (and net.core.rmem_max)",
                    drops - self._drops_seen, dt, drops, rx["full_waits"], rx["full_ns"] / 1e9,
                    self.rates["records_per_s"], self._stage_status().get("builder_wait_s", 0.0),
                )  # fmt: skip
                self._drops_seen = drops
            if t >= next_log:
                next_log = t + self.settings.log_every
                log.info(
                    "rates: %.0f datagrams/s, %.0f records/s; kernel drops %s; ring waits %d (%.1f s); "
                    "spool %d batches; last send %s",
                    self.rates["datagrams_per_s"], self.rates["records_per_s"], drops, rx["full_waits"],
                    rx["full_ns"] / 1e9, self.spool.depth, (self.shipper.last_result or {}).get("outcome", "-"),
                )  # fmt: skip

    def _receiver_counts(self) -> dict[str, int]:
        if self.ring is None:
            return dict.fromkeys(ring_mod.COUNTERS, 0)
        c = self.ring.counters
        return {name: int(c[i]) for i, name in enumerate(ring_mod.COUNTERS)}

    def _kernel(self) -> dict[str, Any]:
        """Kernel-side figures of every socket: drops (None if unreadable) and what waits in the buffers now."""
        per = kernel_counters([lis.sock for lis in self._listeners])
        known = [k for k in per if k is not None]
        return {
            "drops": sum(k[0] for k in known) if len(known) == len(per) else None,
            "queued_bytes": sum(k[1] for k in known),
            "sockets": [
                {"listen": lis.address, "receive_buffer_asked": lis.asked, "receive_buffer_granted": lis.granted,
                 "capped": lis.capped, "kernel_drops": k[0] if k else None, "queued_bytes": k[1] if k else None}
                for lis, k in zip(self._listeners, per, strict=True)
            ],
        }  # fmt: skip

    # -- status ------------------------------------------------------------------------------
    def _stage_status(self) -> dict[str, Any]:
        # In process mode the local stage stays idle: its zeros stand in until the worker process reports.
        st = (self._child_status if self._child is not None else None) or self.stage.status()
        return {**st, "failed_datagrams": st.get("failed_datagrams", 0) + self.counters.failed_datagrams}

    def dead_threads(self) -> list[str]:
        """Stages that ended while the agent runs (a bug, or a killed process): /healthz then answers 503."""
        if self._stop_rx.is_set():
            return []
        dead = [t.name for t in self._threads if not t.is_alive()]
        if not self.shipper.alive:
            dead.append("clarion-edge-shipper")
        if self._child is not None and not self._child[0].is_alive():
            dead.append("clarion-edge-worker-process")
        if self._receiver is not None and not self._receiver.is_alive():
            dead.append("clarion-edge-receiver-process")
        return dead

    def ready(self) -> bool:
        """True once the receiver reads its sockets and the decoder runs (a spawned process takes a moment)."""
        if self.ring is None or not self.ring.counters[ring_mod.ALIVE]:
            return False
        return self._child is None or bool(self._child_status)

    def status(self) -> dict[str, Any]:
        c = self.counters
        rx = self._receiver_counts()
        kernel = self._kernel()
        return {
            "dead_threads": self.dead_threads(),
            "ready": self.ready(),
            "agent_id": self.settings.agent_id,
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "processes": {  # for top -p / pidstat: which process burns the CPU
                name: proc.pid
                for name, proc in (("receiver", self._receiver), ("worker", (self._child or [None])[0]))
                if proc is not None
            },
            "rates": self.rates,
            "receiver": {
                "mode": self.settings.worker,
                "datagrams": rx["datagrams"],
                "bytes": rx["bytes"],
                "kernel_drops": kernel["drops"],
                "kernel_queued_bytes": kernel["queued_bytes"],
                "sockets": kernel["sockets"],
                "ring": self.ring.status() if self.ring is not None else None,
            },
            **self._stage_status(),
            "builder": {"windows": c.windows_built, "graphs_spooled": c.graphs_spooled},
            "spool": self.spool.status(),
            "sender": self.shipper.status(),
        }
