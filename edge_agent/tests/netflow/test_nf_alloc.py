"""The allocator setting that keeps batch temporaries from page-faulting (netflow/alloc.py)."""

from __future__ import annotations

import platform
import resource

import nfbuild as b
import pytest

from clarion_edge.netflow import alloc
from clarion_edge.netflow.decoder import Decoder

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc only")


def test_glibc_accepts_the_settings_once_per_process() -> None:
    assert alloc.keep_freed_memory() is True
    assert alloc.keep_freed_memory() is True  # idempotent: the first answer is kept


def test_a_repeated_large_batch_reuses_memory_instead_of_faulting() -> None:
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (22, 4), (21, 4)]
    rec = b.ip("10.0.0.1") + b.ip("10.0.0.2") + b.u(5000, 2) + b.u(443, 2) + b.u(6, 1) + bytes(16)
    template = b.v9([b.flowset(0, b.v9_template(256, fields))])
    data = b.v9([b.flowset(256, rec * 40)])
    batch = [(template, "a", 0)] + [(data, "a", 0)] * 2000  # 80,000 records, ~10 MB of FLOW_DTYPE out
    decoder = Decoder()
    for _ in range(2):  # warm-up: the heap grows to the batch's peak and settles
        assert len(decoder.decode_batch(batch)) == 80_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = decoder.decode_batch(batch)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert len(out) == 80_000
    # Without the setting every large temporary is mapped fresh: about 1,300 faults per batch here.
    assert faults < 100, faults
