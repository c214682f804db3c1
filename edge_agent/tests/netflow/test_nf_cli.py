"""``clarion-edge decode``: pcap, pcapng and raw captures decode to the same flows and totals."""

from __future__ import annotations

import json
from pathlib import Path

import nfbuild as b
import pcapgen
import pytest
import typer
from typer.testing import CliRunner

from clarion_edge.decode_cli import register
from clarion_edge.netflow.capture import read_datagrams, write_raw


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # keep "decode" a subcommand, as in the agent's CLI
    register(app)
    return app


DATAGRAMS = [
    b.v5([b.v5_record("10.0.0.1", "10.0.0.2", dport=443, packets=3, octets=300)] * 2),
    b.ipfix(
        [
            b.flowset(2, b.ipfix_template(256, [(27, 16), (28, 16), (4, 1), (11, 2), (2, 4), (1, 4), (152, 8)])),
            b.flowset(
                256,
                b.ip("2001:db8::5") + b.ip("2001:db8::6") + b.u(17, 1) + b.u(53, 2) + b.u(1, 4) + b.u(80, 4)
                + b.u(1_700_000_000_123, 8),
            ),
        ]
    ),
]  # fmt: skip


@pytest.fixture(params=["pcap", "pcapng", "raw", "pcap-ipv6"])
def capture(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"capture.{request.param}"
    if request.param == "pcap":
        pcapgen.write_udp_pcap(path, DATAGRAMS)
    elif request.param == "pcap-ipv6":
        pcapgen.write_udp_pcap(path, DATAGRAMS, src="2001:db8::10")
    elif request.param == "pcapng":
        pcapgen.write_udp_pcapng(path, DATAGRAMS)
    else:
        write_raw(path, DATAGRAMS)
    return path


def test_reader_yields_datagrams_with_their_exporter(capture: Path) -> None:
    got = list(read_datagrams(capture))
    assert [g[0] for g in got] == DATAGRAMS
    expected = {"raw": "raw", "pcap-ipv6": "[2001:db8::10]:40000"}.get(capture.suffix[1:], "192.0.2.10:40000")
    assert {g[1] for g in got} == {expected}
    if capture.suffix != ".raw":
        assert [g[2] for g in got] == [1_700_000_000_000, 1_700_000_001_000]


def test_totals(capture: Path) -> None:
    result = CliRunner().invoke(_app(), ["decode", str(capture), "--totals"])
    assert result.exit_code == 0, result.output
    totals = json.loads(result.output.strip().splitlines()[-1])
    assert (totals["flows"], totals["packets"], totals["bytes"]) == (3, 7, 680)
    assert totals["per_protocol"] == {
        "6": {"flows": 2, "packets": 6, "bytes": 600},
        "17": {"flows": 1, "packets": 1, "bytes": 80},
    }
    assert {(p["protocol"], p["dst_port"], p["flows"]) for p in totals["per_port"]} == {(6, 443, 2), (17, 53, 1)}


def test_flow_lines(capture: Path) -> None:
    result = CliRunner().invoke(_app(), ["decode", str(capture)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert len(lines) == 3
    v6 = next(x for x in lines if x["ip_version"] == 6)
    assert (v6["src_addr"], v6["dst_addr"], v6["dst_port"], v6["first_ms"]) == (
        "2001:db8::5", "2001:db8::6", 53, 1_700_000_000_123,
    )  # fmt: skip
    v4 = next(x for x in lines if x["ip_version"] == 4)
    assert (v4["src_addr"], v4["dst_addr"], v4["src_mac"]) == ("10.0.0.1", "10.0.0.2", None)


def test_not_a_capture_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not a capture\n")
    result = CliRunner().invoke(_app(), ["decode", str(bad)])
    assert result.exit_code == 2
    assert "not a pcap, pcapng or raw capture" in result.output
