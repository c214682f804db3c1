"""NetFlow v5: literal datagrams, sampling, uptime wrap, and broken headers."""

from __future__ import annotations

import nfbuild as b
import numpy as np

from clarion_edge.netflow.decoder import Decoder
from clarion_edge.netflow.records import FLOW_DTYPE

# One v5 datagram, written out: header (sampling mode 1, interval 100) + one TCP record.
V5_LITERAL = bytes.fromhex(
    "0005 0001 00002710 6553f100 1dcd6500 00000001 00 00 4064"
    "0a000001 0a000002 00000000 0003 0004 0000000a 000003e8 00001388 00002328"
    "04d2 0050 00 1b 06 00 0000 0000 18 18 0000"
)


def test_literal_v5_datagram_decodes_every_field() -> None:
    d = Decoder()
    out = d.decode(V5_LITERAL, "192.0.2.1:2055", 0)
    assert out.dtype == FLOW_DTYPE
    assert len(out) == 1
    r = out[0]
    assert bytes(r["src_addr"]) == b.mapped("10.0.0.1")
    assert bytes(r["dst_addr"]) == b.mapped("10.0.0.2")
    assert (r["ip_version"], r["protocol"], r["tcp_flags"]) == (4, 6, 0x1B)
    assert (r["src_port"], r["dst_port"], r["in_if"], r["out_if"]) == (1234, 80, 3, 4)
    # Sampled 1:100, so counts are scaled by 100 and the factor is kept.
    assert (r["packets"], r["bytes"], r["sampling"]) == (1000, 100_000, 100)
    # Export time 1700000000.5 s at uptime 10000 ms; flow ran from uptime 5000 to 9000 ms.
    assert r["first_ms"] == 1_699_999_995_500
    assert r["last_ms"] == 1_699_999_999_500
    assert d.stats == {"192.0.2.1:2055": {"datagrams": 1, "records": 1}}


def test_many_records_in_bulk_keep_their_values() -> None:
    records = [b.v5_record("10.0.0.1", f"10.0.1.{i}", dport=i, packets=i + 1, octets=100 * (i + 1)) for i in range(30)]
    out = Decoder().decode(b.v5(records), "e", 0)
    assert out["dst_port"].tolist() == list(range(30))
    assert out["packets"].tolist() == [i + 1 for i in range(30)]
    assert int(out["bytes"].sum()) == sum(100 * (i + 1) for i in range(30))
    assert set(out["sampling"].tolist()) == {1}


def test_uptime_wrap_is_handled() -> None:
    # Uptime wrapped past 2**32 ms: the flow started 2000 ms before export even though first > uptime.
    rec = b.v5_record("10.0.0.1", "10.0.0.2", first=(1 << 32) - 1000, last=500)
    out = Decoder().decode(b.v5([rec], uptime=1000, nsecs=0), "e", 0)
    assert out["first_ms"][0] == 1_700_000_000_000 - 2000
    assert out["last_ms"][0] == 1_700_000_000_000 - 500


def test_batch_across_datagrams_keeps_per_datagram_header_times() -> None:
    d1 = b.v5([b.v5_record("10.0.0.1", "10.0.0.2", first=9000, last=10_000)], secs=1_700_000_000, nsecs=0)
    d2 = b.v5([b.v5_record("10.0.0.1", "10.0.0.3", first=9000, last=10_000)], secs=1_700_000_100, nsecs=0)
    out = Decoder().decode_batch([(d1, "e", 0), (d2, "e", 0)])
    assert sorted(out["last_ms"].tolist()) == [1_700_000_000_000, 1_700_000_100_000]


def test_truncated_and_lying_headers_are_counted_not_raised() -> None:
    d = Decoder()
    rec = b.v5_record("10.0.0.1", "10.0.0.2")
    assert len(d.decode(b.v5([rec], count=2), "e", 0)) == 0  # says 2, carries 1
    assert len(d.decode(b.v5([rec])[:30], "e", 0)) == 0
    assert len(d.decode(b.v5([], count=0), "e", 0)) == 0
    assert len(d.decode(b.v5([rec] * 31), "e", 0)) == 0
    assert len(d.decode(b"\x00\x05", "e", 0)) == 0
    assert len(d.decode(b"\x00\x07" + bytes(40), "e", 0)) == 0
    assert len(d.decode(b"", "e", 0)) == 0
    assert d.stats["e"] == {"datagrams": 7, "truncated": 4, "bad_count": 2, "bad_version": 1}


def test_trailing_bytes_after_declared_records_are_ignored() -> None:
    out = Decoder().decode(b.v5([b.v5_record("10.0.0.1", "10.0.0.2")]) + b"junk", "e", 0)
    assert len(out) == 1
    assert np.array_equal(out["packets"], [10])


def test_one_exporters_v5_batch_decodes_and_counts_as_datagram_by_datagram() -> None:
    """A batch of one exporter's v5 datagrams skips the per-datagram loop: same records, same counters."""
    good = [b.v5([b.v5_record("10.0.0.1", f"10.0.1.{i}", first=i, last=i + 1)] * (i % 3 + 1)) for i in range(9)]
    rec = b.v5_record("10.0.0.1", "10.0.0.2")
    bad = [b.v5([rec], count=2), b.v5([rec])[:30], b.v5([], count=0), b.v5([rec] * 31)]
    batch = [(d, "e", 7) for d in good[:4] + bad + good[4:]]
    together = Decoder()
    out = together.decode_batch(batch)
    single = Decoder()
    expected = [row for d in batch for row in single.decode(*d).tolist()]
    assert len(out) == sum(i % 3 + 1 for i in range(9)) == 18
    assert sorted(out.tolist()) == sorted(expected)
    assert together.stats == single.stats == {"e": {"datagrams": 13, "records": 18, "truncated": 2, "bad_count": 2}}
