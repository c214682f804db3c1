"""IPFIX: enterprise and variable-length fields, withdrawal, every time encoding, options."""

from __future__ import annotations

import nfbuild as b
import pytest

from clarion_edge.netflow.decoder import Decoder

EXPORT = 1_700_000_000
BASE = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 8), (1, 8)]


def base(dport: int = 80, packets: int = 3, octets: int = 300) -> bytes:
    return (
        b.ip("10.0.0.1")
        + b.ip("10.0.0.2")
        + b.u(40000, 2)
        + b.u(dport, 2)
        + b.u(17, 1)
        + b.u(packets, 8)
        + b.u(octets, 8)
    )


# A literal IPFIX message: header (export 1700000000, domain 5), template 256 = sourceIPv4Address,
# an enterprise field (PEN 29305, id 1, 4 bytes) to skip, destinationTransportPort,
# flowStartMilliseconds, flowEndMilliseconds; then one data record.
IPFIX_LITERAL = bytes.fromhex(
    "000a 004e 6553f100 00000001 00000005"
    "0002 0020 0100 0005 0008 0004 8001 0004 00007279 000b 0002 0098 0008 0099 0008"
    "0100 001e 0a0a0a0a deadbeef 01bb 0000018bcfe56800 0000018bcfe56be8"
)


def test_literal_ipfix_message_skips_enterprise_field() -> None:
    d = Decoder()
    out = d.decode(IPFIX_LITERAL, "e", 0)
    assert len(out) == 1
    assert bytes(out[0]["src_addr"]) == b.mapped("10.10.10.10")
    assert out[0]["dst_port"] == 443
    assert (out[0]["first_ms"], out[0]["last_ms"]) == (1_700_000_000_000, 1_700_000_001_000)
    assert d.stats["e"] == {"datagrams": 1, "templates": 1, "records": 1}


def test_cisco_sgt_with_enterprise_bit() -> None:
    fields = [*BASE, (34000 & 0x7FFF, 2, 9), (34001 & 0x7FFF, 2, 9)]
    msg = b.ipfix([b.flowset(2, b.ipfix_template(256, fields)), b.flowset(256, base() + b.u(5, 2) + b.u(6, 2))])
    out = Decoder().decode(msg, "e", 0)
    assert (out[0]["src_sgt"], out[0]["dst_sgt"]) == (5, 6)
    # The same element id under another enterprise is not an SGT.
    fields = [*BASE, (34000 & 0x7FFF, 2, 1234)]
    msg = b.ipfix([b.flowset(2, b.ipfix_template(257, fields)), b.flowset(257, base() + b.u(5, 2))])
    assert Decoder().decode(msg, "e", 0)["src_sgt"].tolist() == [0]


def test_variable_length_fields_are_skipped_correctly() -> None:
    fields = [(8, 4), (82, b.VARLEN), (12, 4), (96, b.VARLEN), (11, 2), (2, 4)]
    rec1 = b.ip("10.0.0.1") + b.varlen(b"Gi1/0/1") + b.ip("10.0.0.2") + b.varlen(b"") + b.u(53, 2) + b.u(4, 4)
    rec2 = b.ip("10.0.0.3") + b.varlen(b"x" * 300) + b.ip("10.0.0.4") + b.varlen(b"app") + b.u(443, 2) + b.u(9, 4)
    msg = b.ipfix([b.flowset(2, b.ipfix_template(256, fields)), b.flowset(256, rec1 + rec2)])
    out = Decoder().decode(msg, "e", 0)
    assert out["dst_port"].tolist() == [53, 443]
    assert out["packets"].tolist() == [4, 9]
    assert [bytes(a) for a in out["dst_addr"]] == [b.mapped("10.0.0.2"), b.mapped("10.0.0.4")]


def test_variable_length_overrun_is_counted() -> None:
    fields = [(8, 4), (82, b.VARLEN)]
    d = Decoder()
    rec = b.ip("10.0.0.1") + b"\xff\x10\x00" + b"short"
    out = d.decode(b.ipfix([b.flowset(2, b.ipfix_template(256, fields)), b.flowset(256, rec, pad=False)]), "e", 0)
    assert len(out) == 0
    assert d.stats["e"]["truncated"] == 1


def test_template_withdrawal_single_and_all() -> None:
    d = Decoder()
    tmpl = b.flowset(2, b.ipfix_template(256, BASE) + b.ipfix_template(257, BASE))
    d.decode(b.ipfix([tmpl]), "e", 0)
    assert d.template_count == 2
    d.decode(b.ipfix([b.flowset(2, b.u(256, 2) + b.u(0, 2))]), "e", 0)
    assert d.template_count == 1
    assert len(d.decode(b.ipfix([b.flowset(256, base())]), "e", 0)) == 0  # withdrawn: waits for a new one
    assert len(d.decode(b.ipfix([b.flowset(257, base())]), "e", 0)) == 1
    d.decode(b.ipfix([b.flowset(2, b.u(2, 2) + b.u(0, 2))]), "e", 0)  # withdraw all templates of the domain
    assert d.template_count == 0
    assert d.stats["e"]["template_withdrawn"] == 2


def _ntp(ms: int) -> bytes:
    secs, frac = divmod(ms, 1000)
    return b.u(secs + 2_208_988_800, 4) + b.u((frac << 32) // 1000 + 1, 4)


@pytest.mark.parametrize(
    ("time_fields", "values"),
    [
        ([(152, 8), (153, 8)], b.u(1_699_999_990_250, 8) + b.u(1_699_999_995_750, 8)),
        ([(150, 4), (151, 4)], b.u(1_699_999_990, 4) + b.u(1_699_999_995, 4)),
        ([(154, 8), (155, 8)], _ntp(1_699_999_990_250) + _ntp(1_699_999_995_750)),
        ([(156, 8), (157, 8)], _ntp(1_699_999_990_250) + _ntp(1_699_999_995_750)),
        ([(158, 4), (159, 4)], b.u(9_750_000, 4) + b.u(4_250_000, 4)),
    ],
)
def test_time_encodings(time_fields: list[tuple[int, int]], values: bytes) -> None:
    msg = b.ipfix([b.flowset(2, b.ipfix_template(256, BASE + time_fields)), b.flowset(256, base() + values)])
    out = Decoder().decode(msg, "e", 0)
    seconds_only = time_fields[0][0] == 150
    assert out[0]["first_ms"] == (1_699_999_990_000 if seconds_only else 1_699_999_990_250)
    assert out[0]["last_ms"] == (1_699_999_995_000 if seconds_only else 1_699_999_995_750)


def test_sysuptime_times_use_the_system_init_time_option() -> None:
    d = Decoder()
    init = 1_699_990_000_123
    opt = b.flowset(3, b.ipfix_options_template(300, 1, [(149, 4), (160, 8)]))
    opt_data = b.flowset(300, b.u(0, 4) + b.u(init, 8))
    tmpl = b.flowset(2, b.ipfix_template(256, [*BASE, (22, 4), (21, 4)]))
    data = b.flowset(256, base() + b.u(5000, 4) + b.u(8000, 4))
    out = d.decode(b.ipfix([opt, opt_data, tmpl, data]), "e", 0)
    assert (out[0]["first_ms"], out[0]["last_ms"]) == (init + 5000, init + 8000)
    assert d.stats["e"]["options_records"] == 1
    assert d.stats["e"]["records"] == 1


def test_packet_interval_sampling_option() -> None:
    d = Decoder()
    opt = b.flowset(3, b.ipfix_options_template(300, 1, [(302, 4), (305, 4), (306, 4)]))
    opt_data = b.flowset(300, b.u(1, 4) + b.u(1, 4) + b.u(99, 4))
    out = d.decode(b.ipfix([opt, opt_data, b.flowset(2, b.ipfix_template(256, BASE)), b.flowset(256, base())]), "e", 0)
    assert (out[0]["sampling"], out[0]["packets"], out[0]["bytes"]) == (100, 300, 30_000)


def test_message_length_lies() -> None:
    d = Decoder()
    good = b.ipfix([b.flowset(2, b.ipfix_template(256, BASE)), b.flowset(256, base())])
    assert len(d.decode(good[:-3], "e", 0)) == 0  # header length says more than arrived
    assert len(d.decode(b.ipfix([], length=8), "e", 0)) == 0
    assert len(d.decode(good + b"trailing", "e", 0)) == 1  # bytes past the message length are ignored
    assert d.stats["e"]["truncated"] == 1
    assert d.stats["e"]["bad_length"] == 1


def test_options_template_requires_a_scope() -> None:
    d = Decoder()
    d.decode(b.ipfix([b.flowset(3, b.ipfix_options_template(300, 0, [(160, 8)]))]), "e", 0)
    assert d.stats["e"]["bad_template"] == 1
    assert d.template_count == 0


def test_absurd_system_init_time_is_ignored() -> None:
    # Found by fuzz_long.py: a 64-bit systemInitTimeMilliseconds near 2**64 overflowed the time arithmetic.
    d = Decoder()
    opt = b.flowset(3, b.ipfix_options_template(300, 1, [(149, 4), (160, 8)]))
    opt_data = b.flowset(300, b.u(0, 4) + b.u((1 << 64) - 5, 8))
    tmpl = b.flowset(2, b.ipfix_template(256, [*BASE, (22, 4), (21, 4)]))
    out = d.decode(b.ipfix([opt, opt_data, tmpl, b.flowset(256, base() + b.u(5000, 4) + b.u(8000, 4))]), "e", 0)
    assert out["first_ms"].tolist() == [EXPORT * 1000]  # unknown init time: the export time stands in
    assert d.stats["e"]["no_system_init_time"] == 1
    assert "internal_error" not in d.stats["e"]
