"""Benchmark: pxGrid session events per second through the client (STOMP decode → JSON → conversion → dedup →
in-memory sink). Run on demand: ``.venv/bin/python tests/benchmarks/pxgrid_stream.py [--events N] [--runs R]``.

Two figures: ``pipeline`` feeds pre-built STOMP frames straight into the consumer's handler (the client-side
ceiling, no network), ``wire`` streams them from the fake ISE over TLS WebSocket into a running service. The last
line is one JSON object with the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import make_pki
from tests.fakes.pxgrid.data import DEFAULT_SGTS, session

from clarion.sources.pxgrid import stomp
from clarion.sources.pxgrid.consumer import SUB_SESSIONS, PxGridConsumer
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import MemorySink

T0 = 1_714_558_530_000


def batches(events: int, per_message: int, offset: int) -> list[list[dict[str, object]]]:
    out, i = [], 0
    while i < events:
        out.append([session(j % 50_000, T0 + offset + j) for j in range(i, min(i + per_message, events))])
        i += per_message
    return out


def pipeline(settings: PxGridSettings, events: int, per_message: int, run: int) -> tuple[float, float]:
    sink = MemorySink(keep_batches=False)
    consumer = PxGridConsumer(settings, sink)
    consumer.state.sgt_by_name = dict(DEFAULT_SGTS)
    frames = []
    for n, sessions in enumerate(batches(events, per_message, run * events)):
        body = json.dumps({"sequence": n, "sessions": sessions}).encode()
        headers = {"destination": "/topic/com.cisco.ise.session", "message-id": str(n), "subscription": SUB_SESSIONS}
        frames.append(stomp.encode("MESSAGE", headers, body))
    start, cpu0 = time.perf_counter(), time.thread_time()
    for raw in frames:
        frame = stomp.decode(raw)
        consumer._handle(frame, None, None)  # type: ignore[arg-type]  # no gap, so no REST needed
    elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu0
    assert sink.applied == events, (sink.applied, events)
    consumer.http.close()
    return events / elapsed, events / cpu


def wire(settings: PxGridSettings, fake: FakePxGrid, events: int, per_message: int, run: int) -> tuple[float, float]:
    sink = MemorySink(keep_batches=False)
    svc = PxGridService(settings, sink)
    svc.start()
    try:
        deadline = time.monotonic() + 30
        while (svc.consumer.phase != "streaming" or fake.subscribed() != 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        base = sink.applied
        payload = batches(events, per_message, 10_000_000 + run * events)
        consumer_thread = next(t for t in threading.enumerate() if t.name == "pxgrid-consumer")
        clock = time.pthread_getcpuclockid(consumer_thread.ident or 0)  # the consumer thread's own CPU time
        start, cpu0 = time.perf_counter(), time.clock_gettime(clock)
        fake.publish_batches(payload)
        while sink.applied - base < events and time.perf_counter() - start < 120:
            time.sleep(0.001)
        elapsed, cpu = time.perf_counter() - start, time.clock_gettime(clock) - cpu0
        assert sink.applied - base == events, (sink.applied - base, events)
        return events / elapsed, events / cpu
    finally:
        svc.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--per-message", type=int, default=10, help="sessions per topic message (ISE batches them)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        fake = FakePxGrid(pki, auto_approve=True, dead_mnt_node=False).start()
        settings = PxGridSettings(
            node_name=pki.client_cn,
            hosts=("127.0.0.1",),
            port=fake.port,
            client_cert=pki.client_cert,
            client_key=pki.client_key,
            ca_cert=pki.ca_cert,
            status_port=None,
            backoff_base_s=0.05,
            read_timeout_s=60,
            ping_interval_s=5,
            max_batch=1000,
        ).validate()
        pipe = [pipeline(settings, args.events, args.per_message, r) for r in range(args.runs)]
        wired = [wire(replace(settings), fake, args.events, args.per_message, r) for r in range(args.runs)]
        fake.stop()
    for name, values in (("pipeline", pipe), ("wire", wired)):
        print(
            f"{name:9s} events/s wall: {', '.join(f'{v[0]:,.0f}' for v in values)}; "
            f"per CPU-second of the client thread: {', '.join(f'{v[1]:,.0f}' for v in values)}"
        )
    print(
        json.dumps(
            {
                "benchmark": "pxgrid_stream",
                "events": args.events,
                "sessions_per_message": args.per_message,
                "runs": args.runs,
                "pipeline_events_per_s_median": round(statistics.median(v[0] for v in pipe)),
                "wire_events_per_s_median": round(statistics.median(v[0] for v in wired)),
                "pipeline_events_per_cpu_s_median": round(statistics.median(v[1] for v in pipe)),
                "wire_events_per_cpu_s_median": round(statistics.median(v[1] for v in wired)),
                "load_average_1m": round(os.getloadavg()[0], 1),
                "note": "client side only (in-memory sink); wall figures share the cores with the fake ISE and the "
                "machine's other load; per-CPU-second figures count only the consumer thread's CPU time",
            }
        )
    )


if __name__ == "__main__":
    main()
