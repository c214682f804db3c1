"""The pxGrid service hands a bulk download to the sink in big batches (sent as several requests in flight),
and joins stream messages that are already queued into one batch, without holding back a lone one."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from clarion.sources.model import Session
from clarion.sources.pxgrid import consumer as consumer_module
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import STREAM_JOIN, MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, expected, get_status, settings_for, streaming, wait_for
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here


def test_the_bulk_download_goes_in_backfill_batches_and_the_stream_in_small_ones(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "BACKFILL_BATCH", 1_000)
    fake.add_sessions([session(i, T0 + i) for i in range(2_500)])
    sink = MemorySink()
    svc = run_service(settings_for(fake, pki, max_batch=100), sink)
    wait_for(lambda: len(sink.latest) == 2_500 and svc.consumer.phase == "streaming")
    assert [len(b) for b in sink.batches] == [1_000, 1_000, 500]
    wait_for(lambda: fake.subscribed() == 1)
    fake.publish_sessions([session(3_000 + k, T0 + 10_000 + k) for k in range(3)])
    wait_for(lambda: sink.applied == 2_503)
    assert [len(b) for b in sink.batches[3:]] == [3]
    assert svc.consumer.state.max_batch == 100 * STREAM_JOIN  # the stream's: up to STREAM_JOIN requests
    assert sink.latest == expected(fake)


def test_the_service_sends_a_backfill_in_bulk_requests_unless_told_otherwise(fake: FakePxGrid, pki: Pki) -> None:
    from clarion.sources.pxgrid.service import BULK_REQUEST
    from clarion.sources.pxgrid.sink import HttpSink

    for given, want in ((None, BULK_REQUEST), (2_000, 2_000)):
        sink = HttpSink("http://127.0.0.1:1", "t", batch=1_000, bulk_batch=given)
        svc = PxGridService(settings_for(fake, pki), sink)
        if svc.http is not None:
            svc.http.server_close()
        assert (sink.batch, sink.bulk_batch) == (1_000, want)
        sink.close()


class SlowSink(MemorySink):
    """A sink that takes 50 ms per batch, like a request to a busy server: messages queue meanwhile."""

    def apply(self, sessions: list[Session]) -> None:
        time.sleep(0.05)
        super().apply(sessions)


def test_queued_session_messages_are_joined_into_one_batch_of_a_few_requests(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService]
) -> None:
    sink = SlowSink()
    svc = run_service(settings_for(fake, pki, max_batch=50), sink)
    wait_for(streaming(svc))
    wait_for(lambda: fake.subscribed() == 1)
    for k in range(200):  # one session per message, as ISE often sends them
        fake.publish_sessions([session(k, T0 + 100 + k)])
    wait_for(lambda: sink.applied == 200, what="every published session in the sink")
    sizes = [len(b) for b in sink.batches]
    assert sum(sizes) == 200
    assert max(sizes) <= 50 * STREAM_JOIN  # never more than STREAM_JOIN requests of max_batch per hand-over
    assert len(sizes) <= 40  # not one request per message: on average at least five joined
    assert sink.latest == expected(fake)
    assert get_status(svc)["counters"]["merged"] == 200
    fake.publish_sessions([session(500, T0 + 1_000)])  # a lone message on an idle stream is not held back
    wait_for(lambda: sink.applied == 201, timeout=2.0)
