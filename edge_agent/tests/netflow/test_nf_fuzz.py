"""Property-based fuzzing of every decoder: hostile bytes never raise, hang, or grow state past its limits.

The budget here is small so the suite stays fast; ``fuzz_long.py`` runs the same properties for minutes.
"""

from __future__ import annotations

import nfbuild as b
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clarion_edge.netflow import decoder as decoder_module
from clarion_edge.netflow.decoder import Decoder
from clarion_edge.netflow.records import FLOW_DTYPE

MAX_TEMPLATES, MAX_PENDING = 8, 4


def seeds() -> list[bytes]:
    """Valid datagrams of every version and feature, the starting points for mutation."""
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (22, 4), (21, 4), (34000, 2)]
    rec = bytes(range(4, 4 + 33))
    ipfix_fields = [(8, 4), (82, b.VARLEN), (12, 4), (1, 8, 9), (11, 2), (152, 8)]
    ipfix_rec = b.ip("10.0.0.1") + b.varlen(b"eth0") + b.ip("10.0.0.2") + bytes(8) + b.u(80, 2) + bytes(8)
    fixed = [(8, 4), (12, 4), (11, 2), (2, 4), (1, 4), (22, 4), (21, 4)]
    fixed_rec = b.ip("10.0.0.7") + b.ip("10.0.0.8") + b.u(443, 2) + b.u(2, 4) + b.u(99, 4) + b.u(10, 4) + b.u(20, 4)
    return [
        b.v5([b.v5_record("10.0.0.1", "10.0.0.2")] * 3, sampling=0x4010),
        b.v9([b.flowset(0, b.v9_template(256, fields)), b.flowset(256, rec * 3)]),
        b.v9([b.flowset(1, b.v9_options_template(260, [(1, 4)], [(34, 4)])), b.flowset(260, bytes(8))]),
        b.ipfix([b.flowset(2, b.ipfix_template(256, ipfix_fields)), b.flowset(256, ipfix_rec * 2)]),
        b.ipfix([b.flowset(3, b.ipfix_options_template(300, 1, [(149, 4), (160, 8)])), b.flowset(300, bytes(12))]),
        b.ipfix([b.flowset(2, b.u(256, 2) + b.u(0, 2))]),
        # Data-only messages (templates from the ones above): the vectorised walk's case.
        b.v9([b.flowset(256, rec * 2), b.flowset(256, rec), b.flowset(260, bytes(8))]),
        b.v9([b.flowset(256, rec * 5)]),
        b.ipfix([b.flowset(2, b.ipfix_template(257, fixed)), b.flowset(257, fixed_rec)]),
        b.ipfix([b.flowset(257, fixed_rec * 4), b.flowset(256, ipfix_rec), b.flowset(257, fixed_rec)]),
        b.ipfix([b.flowset(257, fixed_rec * 2)]),
        b.ipfix([b.flowset(300, b.u(0, 4) + b.u(1_700_000_000_000, 8)), b.flowset(257, fixed_rec)]),
    ]


SEEDS = seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        if op == 0 and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == 1 and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == 2:
            data += draw(st.binary(max_size=64))
        elif op == 3 and len(data) > 8:
            pos = draw(st.integers(4, len(data) - 2))
            data[pos : pos + 2] = draw(st.sampled_from([b"\x00\x00", b"\xff\xff", b"\x00\x04", b"\x01\x00"]))
    return bytes(data)


def headed(version: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=600).map(lambda tail: version.to_bytes(2, "big") + tail)


datagrams = st.one_of(mutated(), headed(5), headed(9), headed(10), st.binary(max_size=64))


def check(d: Decoder, batch: list[tuple[bytes, str, int]]) -> None:
    out = d.decode_batch(batch)
    assert out.dtype == FLOW_DTYPE
    assert all("internal_error" not in c for c in d.stats.values()), d.stats
    exporters = len(d.stats)  # every exporter seen so far may hold state
    assert d.template_count <= MAX_TEMPLATES * exporters
    assert d.pending_count <= MAX_PENDING * exporters


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(datagrams, st.sampled_from(["a", "b"]), st.integers(0, 10**7)), max_size=12))
def test_sequences_of_hostile_datagrams(batch: list[tuple[bytes, str, int]]) -> None:
    d = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    check(d, batch)
    for item in batch:  # the same datagrams one at a time, on warm state
        check(d, [item])


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_single_mutated_datagram_decodes_or_is_counted(data: bytes) -> None:
    d = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    out = d.decode(data, "x", 0)
    stats = d.stats["x"]
    assert stats["datagrams"] == 1
    assert "internal_error" not in stats
    assert stats.get("records", 0) == len(out)


def test_template_flood_across_many_datagrams_stays_bounded() -> None:
    d = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    for i in range(2000):
        tmpl = b.flowset(2, b.ipfix_template(256 + i, [(8, 4), (12, 4), (11, 2 + i % 3)]))
        d.decode(b.ipfix([tmpl, b.flowset(4000 + i, bytes(16))]), "flood", i)
    assert d.template_count == MAX_TEMPLATES
    assert d.pending_count == MAX_PENDING
    assert d.stats["flood"]["template_flood"] == 2000 - MAX_TEMPLATES


def test_spoofed_exporters_are_bounded() -> None:
    d = Decoder(max_exporters=16)
    tmpl = b.flowset(2, b.ipfix_template(256, [(8, 4)]))
    for i in range(100):
        d.decode(b.ipfix([tmpl]), f"10.0.{i}.1", 0)
    assert d.template_count == 16
    assert sum(c.get("exporter_limit", 0) for c in d.stats.values()) == 84


def test_pending_bytes_are_bounded_across_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoder_module, "MAX_PENDING_BYTES", 200_000)
    d = Decoder(pending_max_datagrams=1000)
    big = b.ipfix([b.flowset(300, bytes(60_000))])
    for i in range(50):
        d.decode(big, f"10.1.0.{i}", i)
    held = sum(len(p.payload) for e in d._exporters.values() for p in e.pending)
    assert held <= 200_000
    assert held == d._pending_bytes == sum(e.pending_bytes for e in d._exporters.values())
    assert sum(c.get("pending_overflow", 0) for c in d.stats.values()) == 50 - d.pending_count
    # A template releases that exporter's waiting sets, and the accounting follows.
    d.decode(b.ipfix([b.flowset(2, b.ipfix_template(300, [(8, 4), (12, 4)]))]), "10.1.0.0", 100)
    assert d._pending_bytes == sum(e.pending_bytes for e in d._exporters.values())


def test_observation_domain_flood_keeps_no_state() -> None:
    d = Decoder()
    for i in range(5000):
        d.decode(b.ipfix([b.flowset(300, bytes(8))], domain=i), "e", 0)
    assert len(d._exporters["e"].domains) == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(mutated(), st.sampled_from(SEEDS)), st.sampled_from(["a", "b"])), max_size=24))
def test_vectorised_walk_matches_the_sequential_walk(items: list[tuple[bytes, str]]) -> None:
    batch = [(data, exporter, i * 100) for i, (data, exporter) in enumerate(items)]
    bulk = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    bulk_module_min = decoder_module.BULK_MIN_MESSAGES
    decoder_module.BULK_MIN_MESSAGES = 1
    try:
        together = bulk.decode_batch(batch)
    finally:
        decoder_module.BULK_MIN_MESSAGES = bulk_module_min
    single = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    one_by_one = [single.decode(*item) for item in batch]
    expected = sorted(row for out in one_by_one for row in out.tolist())
    assert sorted(together.tolist()) == expected
    assert bulk.stats == single.stats


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.one_of(mutated(), st.sampled_from(SEEDS)), st.sampled_from(["a", "b"])), max_size=32),
    st.integers(1, 8),
)
def test_vectorised_walk_over_several_batches_matches_the_sequential_walk(
    items: list[tuple[bytes, str]], size: int
) -> None:
    """Template refreshes and repeated option data learnt in one batch are skipped in the next: same result."""
    batch = [(data, exporter, i * 100) for i, (data, exporter) in enumerate(items)]
    bulk = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    bulk_module_min = decoder_module.BULK_MIN_MESSAGES
    decoder_module.BULK_MIN_MESSAGES = 1
    try:
        together = [bulk.decode_batch(batch[i : i + size]) for i in range(0, len(batch), size)]
    finally:
        decoder_module.BULK_MIN_MESSAGES = bulk_module_min
    single = Decoder(max_templates_per_exporter=MAX_TEMPLATES, pending_max_datagrams=MAX_PENDING)
    one_by_one = [single.decode(*item) for item in batch]
    assert sorted(row for out in together for row in out.tolist()) == sorted(
        row for out in one_by_one for row in out.tolist()
    )
    assert bulk.stats == single.stats
