"""Fixtures shared by the pxGrid integration tests: one PKI per module, a fake ISE node and running services.

A helper module rather than a conftest: each test_pxgrid_*.py imports what it uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.settings import PxGridSettings
from clarion.sources.pxgrid.sink import MemorySink
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake(pki: Pki) -> Iterator[FakePxGrid]:
    server = FakePxGrid(pki, auto_approve=True).start()
    yield server
    server.stop()


@pytest.fixture
def run_service() -> Iterator[Callable[[PxGridSettings, MemorySink], PxGridService]]:
    started: list[PxGridService] = []

    def start(settings: PxGridSettings, sink: MemorySink) -> PxGridService:
        svc = PxGridService(settings, sink)
        svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
