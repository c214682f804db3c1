"""NetFlow v9: templates per (exporter, source id), options (sampling), pending data, limits."""

from __future__ import annotations

import nfbuild as b

from clarion_edge.netflow.decoder import Decoder

# Template 256: IPv4 src/dst, ports, proto, flags, in/out if, bytes, packets, first/last, MACs, VLAN, SGTs.
FIELDS = [
    (8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (10, 4), (14, 4), (1, 8), (2, 4), (22, 4), (21, 4),
    (56, 6), (80, 6), (58, 2), (34000, 2), (34001, 2),
]  # fmt: skip


def record(dport: int = 443, packets: int = 7, octets: int = 7000, src_sgt: int = 10, dst_sgt: int = 20) -> bytes:
    return (
        b.ip("10.1.1.1") + b.ip("10.2.2.2") + b.u(50000, 2) + b.u(dport, 2) + b.u(6, 1) + b.u(0x12, 1)
        + b.u(11, 4) + b.u(12, 4) + b.u(octets, 8) + b.u(packets, 4) + b.u(90_000, 4) + b.u(99_000, 4)
        + bytes.fromhex("0011223344 55") + bytes.fromhex("66778899aabb") + b.u(100, 2) + b.u(src_sgt, 2)
        + b.u(dst_sgt, 2)
    )  # fmt: skip


# A literal v9 datagram: header (uptime 100000 ms, unix 1700000000, source id 0) + template 256
# (IPv4 src, dst, dst port, packets) + one data record.
V9_LITERAL = bytes.fromhex(
    "0009 0002 000186a0 6553f100 00000001 00000000"
    "0000 0018 0100 0004 0008 0004 000c 0004 000b 0002 0002 0004"
    "0100 0014 c0a80001 c0a80002 0035 00000003 000000"
)


def test_literal_v9_datagram() -> None:
    d = Decoder()
    out = d.decode(V9_LITERAL, "192.0.2.9", 0)
    assert len(out) == 1
    assert bytes(out[0]["src_addr"]) == b.mapped("192.168.0.1")
    assert bytes(out[0]["dst_addr"]) == b.mapped("192.168.0.2")
    assert (out[0]["dst_port"], out[0]["packets"], out[0]["bytes"]) == (53, 3, 0)
    # No time fields: the header's export time stands in.
    assert out[0]["first_ms"] == out[0]["last_ms"] == 1_700_000_000_000
    assert d.stats["192.0.2.9"] == {"datagrams": 1, "templates": 1, "records": 1}


def test_template_and_data_decode_all_fields() -> None:
    pkt = b.v9([b.flowset(0, b.v9_template(256, FIELDS)), b.flowset(256, record() + record(dport=22))])
    out = Decoder().decode(pkt, "e", 0)
    assert out["dst_port"].tolist() == [443, 22]
    r = out[0]
    assert (r["protocol"], r["tcp_flags"], r["in_if"], r["out_if"]) == (6, 0x12, 11, 12)
    assert (r["bytes"], r["packets"], r["sampling"]) == (7000, 7, 1)
    assert r["src_mac"] == 0x001122334455
    assert r["dst_mac"] == 0x66778899AABB
    assert (r["vlan"], r["src_sgt"], r["dst_sgt"]) == (100, 10, 20)
    # Header: uptime 100000 ms at 1700000000 s; the flow ran at uptime 90000..99000.
    assert r["first_ms"] == 1_700_000_000_000 - 10_000
    assert r["last_ms"] == 1_700_000_000_000 - 1_000


def test_ipv6_template() -> None:
    fields = [(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4)]
    rec = b.ip("2001:db8::1") + b.ip("2001:db8::2") + b.u(1, 2) + b.u(53, 2) + b.u(17, 1) + b.u(80, 4) + b.u(1, 4)
    out = Decoder().decode(b.v9([b.flowset(0, b.v9_template(300, fields)), b.flowset(300, rec)]), "e", 0)
    assert out["ip_version"].tolist() == [6]
    assert bytes(out[0]["src_addr"]) == b.mapped("2001:db8::1")
    assert bytes(out[0]["dst_addr"]) == b.mapped("2001:db8::2")


def test_templates_are_keyed_by_exporter_and_source_id() -> None:
    d = Decoder()
    short = [(8, 4), (12, 4), (11, 2)]
    d.decode(b.v9([b.flowset(0, b.v9_template(256, FIELDS))], source_id=1), "a", 0)
    d.decode(b.v9([b.flowset(0, b.v9_template(256, short))], source_id=2), "a", 0)
    out1 = d.decode(b.v9([b.flowset(256, record(dport=1))], source_id=1), "a", 0)
    out2 = d.decode(b.v9([b.flowset(256, b.ip("1.1.1.1") + b.ip("2.2.2.2") + b.u(2, 2))], source_id=2), "a", 0)
    assert out1["dst_port"].tolist() == [1]
    assert out2["dst_port"].tolist() == [2]
    # Another exporter has no template 256 yet: its data waits instead of being misread.
    assert len(d.decode(b.v9([b.flowset(256, record())], source_id=1), "b", 0)) == 0
    assert d.stats["b"]["unknown_template_pending"] == 1


def test_data_before_template_waits_and_is_decoded_when_the_template_arrives() -> None:
    d = Decoder()
    assert len(d.decode(b.v9([b.flowset(256, record(dport=1))]), "e", 1000)) == 0
    assert len(d.decode(b.v9([b.flowset(256, record(dport=2))]), "e", 2000)) == 0
    assert d.pending_count == 2
    out = d.decode(b.v9([b.flowset(0, b.v9_template(256, FIELDS)), b.flowset(256, record(dport=3))]), "e", 3000)
    assert sorted(out["dst_port"].tolist()) == [1, 2, 3]
    assert d.pending_count == 0
    assert d.stats["e"]["pending_decoded"] == 2
    assert d.stats["e"]["records"] == 3


def test_pending_is_bounded_and_expires() -> None:
    d = Decoder(pending_max_datagrams=3, pending_ttl_s=30)
    for i in range(5):
        d.decode(b.v9([b.flowset(256, record(dport=i))]), "e", i)
    assert d.pending_count == 3
    assert d.stats["e"]["pending_overflow"] == 2
    # 31 s later the waiting sets are too old to trust.
    out = d.decode(b.v9([b.flowset(0, b.v9_template(256, FIELDS))]), "e", 31_000)
    assert len(out) == 0
    assert d.stats["e"]["pending_expired"] == 3


def test_options_sampling_interval_scales_counts() -> None:
    d = Decoder()
    opt = b.v9_options_template(260, [(1, 4)], [(34, 4), (35, 1)])
    opt_rec = b.u(0, 4) + b.u(64, 4) + b.u(2, 1)
    out = d.decode(
        b.v9([b.flowset(1, opt), b.flowset(260, opt_rec), b.flowset(0, b.v9_template(256, FIELDS)),
              b.flowset(256, record(packets=2, octets=300))]),
        "e", 0,
    )  # fmt: skip
    assert (out[0]["packets"], out[0]["bytes"], out[0]["sampling"]) == (128, 19_200, 64)
    assert d.stats["e"]["options_records"] == 1
    assert d.stats["e"]["records"] == 1  # option records are not flows


def test_sampler_id_maps_records_to_their_sampler() -> None:
    d = Decoder()
    opt = b.v9_options_template(260, [(1, 4)], [(48, 1), (50, 4)])
    fields = [(8, 4), (12, 4), (2, 4), (1, 4), (48, 1)]
    rec = lambda sampler: b.ip("1.1.1.1") + b.ip("2.2.2.2") + b.u(1, 4) + b.u(100, 4) + b.u(sampler, 1)  # noqa: E731
    out = d.decode(
        b.v9([b.flowset(1, opt), b.flowset(260, b.u(0, 4) + b.u(1, 1) + b.u(10, 4) + b.u(0, 4) + b.u(2, 1)
              + b.u(1000, 4)), b.flowset(0, b.v9_template(256, fields)), b.flowset(256, rec(1) + rec(2) + rec(3))]),
        "e", 0,
    )  # fmt: skip
    assert out["sampling"].tolist() == [10, 1000, 1]
    assert out["packets"].tolist() == [10, 1000, 1]


def test_template_limit_per_exporter_counts_a_flood() -> None:
    d = Decoder(max_templates_per_exporter=4)
    sets = [b.flowset(0, b.v9_template(256 + i, [(8, 4), (12, 4), (11, 2)])) for i in range(10)]
    d.decode(b.v9(sets), "e", 0)
    assert d.template_count == 4
    assert d.stats["e"]["template_flood"] == 6
    d.decode(b.v9(sets), "other", 0)  # the limit is per exporter
    assert d.template_count == 8


def test_templates_expire_after_their_ttl() -> None:
    d = Decoder(template_ttl_s=60)
    d.decode(b.v9([b.flowset(0, b.v9_template(256, FIELDS))]), "e", 0)
    assert len(d.decode(b.v9([b.flowset(256, record())]), "e", 59_000)) == 1
    assert len(d.decode(b.v9([b.flowset(256, record())]), "e", 121_000)) == 0
    assert d.stats["e"]["template_expired"] == 1


def test_zero_length_and_broken_templates_are_refused() -> None:
    d = Decoder()
    d.decode(b.v9([b.flowset(0, b.v9_template(256, [(8, 0), (12, 0)]))]), "e", 0)
    d.decode(b.v9([b.flowset(0, b.v9_template(100, [(8, 4)]))]), "e", 0)  # ids below 256 are reserved
    d.decode(b.v9([b.flowset(0, b.u(257, 2) + b.u(50, 2) + b.u(8, 2))]), "e", 0)  # claims 50 fields
    assert d.template_count == 0
    assert d.stats["e"]["bad_template"] == 3
    assert len(d.decode(b.v9([b.flowset(256, bytes(40))]), "e", 0)) == 0


def test_lying_set_lengths() -> None:
    d = Decoder()
    tmpl = b.flowset(0, b.v9_template(256, FIELDS))
    data = b.flowset(256, record())
    assert len(d.decode(b.v9([tmpl, data[:2] + b.u(9999, 2) + data[4:]]), "e", 0)) == 0
    assert len(d.decode(b.v9([tmpl, b.u(256, 2) + b.u(2, 2) + data[4:]]), "e", 0)) == 0
    assert len(d.decode(b.v9([tmpl, b.flowset(7, b"xxxx")]), "e", 0)) == 0
    assert d.stats["e"]["truncated"] == 1
    assert d.stats["e"]["bad_length"] == 1
    assert d.stats["e"]["bad_set_id"] == 1


def test_empty_v9_template_is_not_a_withdrawal() -> None:
    # Withdrawal is IPFIX only (RFC 7011 §8.1); in v9 an empty template is just broken.
    d = Decoder()
    d.decode(b.v9([b.flowset(0, b.v9_template(256, FIELDS))]), "e", 0)
    d.decode(b.v9([b.flowset(0, b.u(256, 2) + b.u(0, 2) + b.v9_template(257, [(8, 4)]))]), "e", 0)
    assert d.template_count == 2
    assert d.stats["e"]["bad_template"] == 1


def test_post_direction_fallbacks_icmp_and_short_interfaces() -> None:
    # Egress-side MACs (81 postSourceMac, 57 postDestinationMac) and VLAN (59) when the ingress ones are absent;
    # ICMP type/code (32) as the destination port; 2-byte interface indexes.
    fields = [(8, 4), (12, 4), (4, 1), (32, 2), (10, 2), (14, 2), (81, 6), (57, 6), (59, 2), (2, 4), (1, 4)]
    rec = (
        b.ip("10.0.0.1") + b.ip("10.0.0.2") + b.u(1, 1) + b.u(0x0800, 2) + b.u(7, 2) + b.u(8, 2)
        + bytes.fromhex("aabbccddeeff") + bytes.fromhex("010203040506") + b.u(42, 2) + b.u(1, 4) + b.u(84, 4)
    )  # fmt: skip
    out = Decoder().decode(b.v9([b.flowset(0, b.v9_template(256, fields)), b.flowset(256, rec)]), "e", 0)
    r = out[0]
    assert (r["protocol"], r["dst_port"], r["in_if"], r["out_if"]) == (1, 0x0800, 7, 8)
    assert (r["src_mac"], r["dst_mac"], r["vlan"]) == (0xAABBCCDDEEFF, 0x010203040506, 42)
