"""The pxGrid HttpSink with requests in flight, against a real loopback HTTP server that answers slowly:
at most ``window`` at once, sent in stream order, and a failure still raised with nothing after it lost."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid.errors import SinkError
from clarion.sources.pxgrid.sink import HttpSink


class SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.started: list[str] = []  # first MAC of each request, in the order requests arrived
        self.merged: list[str] = []  # every MAC of the requests answered 2xx
        self.flying = 0
        self.most_flying = 0
        self.delay_s = 0.05
        self.status_for: dict[str, list[int]] = {}  # first MAC of a request -> status codes to answer, in order
        self.poison: set[str] = set()  # a request holding one of these MACs gets 422


class Handler(BaseHTTPRequestHandler):
    server: SlowServer

    def do_POST(self) -> None:
        macs = [row["mac"] for row in json.loads(self.rfile.read(int(self.headers["Content-Length"])))["sessions"]]
        srv = self.server
        with srv.lock:
            srv.started.append(macs[0])
            srv.flying += 1
            srv.most_flying = max(srv.most_flying, srv.flying)
            codes = srv.status_for.get(macs[0])
            code = codes.pop(0) if codes else 200
            if srv.poison & set(macs):
                code = 422
        time.sleep(srv.delay_s)
        with srv.lock:
            srv.flying -= 1
            if code < 300:
                srv.merged += macs
        data = b'{"detail": "no"}' if code >= 300 else b"{}"
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[SlowServer]:
    srv = SlowServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv: SlowServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def sessions(n: int) -> list[Session]:
    return [Session(mac=f"aa:00:00:00:{i >> 8:02x}:{i & 255:02x}", timestamp_ms=i) for i in range(n)]


def test_two_requests_in_flight_in_stream_order_and_every_session_merged(server: SlowServer) -> None:
    items = sessions(100)
    server.delay_s = 0.1
    sink = HttpSink(url(server), "t", batch=10, window=2)
    try:
        t0 = time.perf_counter()
        sink.apply(items)
        took = time.perf_counter() - t0
    finally:
        sink.close()
    assert server.most_flying == 2  # overlapped, and never more than the window
    firsts = [s.mac for s in items[::10]]
    assert sorted(server.started) == firsts  # each request once
    # sent in stream order: two requests started together may reach the server either way round, no more
    assert all(abs(firsts.index(mac) - place) <= 1 for place, mac in enumerate(server.started))
    assert sorted(server.merged) == sorted(s.mac for s in items)  # nothing lost, nothing twice
    assert took < 10 * server.delay_s  # ten requests of 100 ms each take at least 1 s one after another


def test_window_one_sends_one_at_a_time(server: SlowServer) -> None:
    sink = HttpSink(url(server), "t", batch=10, window=1)
    sink.apply(sessions(40))
    sink.close()
    assert server.most_flying == 1
    assert len(server.merged) == 40


def test_a_request_retried_while_the_next_is_in_flight_loses_nothing(server: SlowServer) -> None:
    items = sessions(60)
    server.status_for[items[20].mac] = [503, 503]  # the third request fails twice, then merges
    sink = HttpSink(url(server), "t", batch=10, window=2, backoff_s=0.01)
    sink.apply(items)
    sink.close()
    assert sorted(server.merged) == sorted(s.mac for s in items)
    assert server.started.count(items[20].mac) == 3


def test_a_failed_request_raises_after_the_one_in_flight_and_sends_nothing_after_it(server: SlowServer) -> None:
    items = sessions(100)
    server.status_for[items[30].mac] = [403]  # the fourth request is refused for good
    sink = HttpSink(url(server), "t", batch=10, window=2, backoff_s=0.01)
    with pytest.raises(SinkError, match="HTTP 403"):
        sink.apply(items)
    sink.close()
    # the first three merged, the fifth was in flight with the fourth and ended; nothing after it was sent
    assert sorted(server.started) == [s.mac for s in items[0:50:10]]
    assert server.flying == 0
    assert sorted(server.merged) == sorted(s.mac for s in items[:30] + items[40:50])


def test_a_refused_session_is_isolated_while_other_requests_fly(server: SlowServer) -> None:
    items = sessions(80)
    server.poison = {items[33].mac}
    server.delay_s = 0.005
    sink = HttpSink(url(server), "t", batch=10, window=2)
    sink.apply(items)
    sink.close()
    assert sink.rejected == 1
    assert sorted(server.merged) == sorted(s.mac for s in items if s.mac != items[33].mac)


def test_a_handover_bigger_than_a_stream_batch_goes_in_bulk_requests(server: SlowServer) -> None:
    server.delay_s = 0.0
    sink = HttpSink(url(server), "t", batch=10, bulk_batch=20)
    stream, backfill = sessions(10), sessions(55)[10:]
    sink.apply(stream)  # a stream flush (at most max_batch): one request
    sink.apply(backfill)  # a backfill hand-off: requests of bulk_batch
    sink.close()
    assert sorted(server.started) == sorted([stream[0].mac, backfill[0].mac, backfill[20].mac, backfill[40].mac])
    assert sorted(server.merged) == sorted(s.mac for s in stream + backfill)


def test_a_joined_stream_flush_of_two_batches_goes_as_two_requests_in_flight(server: SlowServer) -> None:
    server.delay_s = 0.1
    sink = HttpSink(url(server), "t", batch=10, bulk_batch=50, window=2)
    items = sessions(20)  # what the consumer hands over under a backlog: two max_batch worth
    sink.apply(items)
    sink.close()
    assert sorted(server.started) == [items[0].mac, items[10].mac]
    assert server.most_flying == 2


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match=re.escape("window 0: give 1..8")):
        HttpSink("http://127.0.0.1:1", "t", window=0)
    with pytest.raises(ValueError, match=re.escape("batch 200000: give 1..100000")):
        HttpSink("http://127.0.0.1:1", "t", batch=200_000)
    with pytest.raises(ValueError, match=re.escape("bulk_batch 500: give 1000..100000 (at least batch)")):
        HttpSink("http://127.0.0.1:1", "t", batch=1_000, bulk_batch=500)
