"""``clarion-edge decode FILE``: decode a capture offline, to check an exporter before pointing it at an agent.

Prints one JSON object per flow, or with ``--totals`` one JSON object of sums (flows, packets,
bytes, per protocol and per protocol/port) plus the decoder's drop counters.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from clarion_edge.netflow.capture import CaptureError, Datagram, read_datagrams
from clarion_edge.netflow.decoder import Decoder

_BATCH = 512


def register(app: typer.Typer) -> None:
    """Add the ``decode`` command to the agent's CLI."""
    app.command("decode")(decode_command)


def decode_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True,
            help="pcap, pcapng, or raw capture (records of a 4-byte big-endian length + datagram).",
        ),
    ],
    totals: Annotated[bool, typer.Option("--totals", help="Print sums instead of one line per flow.")] = False,
) -> None:  # fmt: skip
    """Decode the NetFlow v5 / v9 / IPFIX datagrams of a capture and print flows or totals as JSON."""
    decoder = Decoder()
    acc = _Totals()
    out = sys.stdout
    try:
        for exporter, flows in decode_file(file, decoder):
            if totals:
                acc.add(flows)
            else:
                for line in flow_lines(flows, exporter):
                    out.write(line + "\n")
    except CaptureError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if totals:
        out.write(json.dumps(acc.result(decoder.stats), sort_keys=True) + "\n")


def decode_file(path: Path, decoder: Decoder) -> Iterator[tuple[str, np.ndarray]]:
    """Decoded flows in batches, each with the exporter (source "ip:port") whose datagrams produced it."""
    batch: list[Datagram] = []
    for item in read_datagrams(path):
        if batch and (item[1] != batch[0][1] or len(batch) >= _BATCH):
            yield batch[0][1], decoder.decode_batch(batch)
            batch = []
        batch.append(item)
    if batch:
        yield batch[0][1], decoder.decode_batch(batch)


def _address(raw: bytes, version: int) -> str:
    return str(ipaddress.IPv4Address(raw[12:])) if version == 4 else str(ipaddress.IPv6Address(raw))


def _mac(value: int) -> str | None:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big")) if value else None


def flow_lines(flows: np.ndarray, exporter: str) -> Iterator[str]:
    """One JSON object per flow (addresses as text, MACs as aa:bb:.., absent MACs as null)."""
    for row in flows.tolist():
        rec: dict[str, Any] = dict(zip(flows.dtype.names or (), row, strict=True))
        version = rec["ip_version"]
        rec["src_addr"] = _address(rec["src_addr"], version)
        rec["dst_addr"] = _address(rec["dst_addr"], version)
        rec["src_mac"] = _mac(rec["src_mac"])
        rec["dst_mac"] = _mac(rec["dst_mac"])
        rec["exporter"] = exporter
        yield json.dumps(rec, sort_keys=True)


class _Totals:
    """Sums per protocol and per (protocol, destination port), built with numpy per batch."""

    def __init__(self) -> None:
        self.flows = self.packets = self.bytes = 0
        self.per_port: dict[tuple[int, int], list[int]] = {}

    def add(self, flows: np.ndarray) -> None:
        if len(flows) == 0:
            return
        self.flows += len(flows)
        self.packets += int(flows["packets"].sum())
        self.bytes += int(flows["bytes"].sum())
        key = flows["protocol"].astype(np.uint32) << 16 | flows["dst_port"].astype(np.uint32)
        uniq, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(uniq))
        packets = np.bincount(inverse, weights=flows["packets"].astype(np.float64), minlength=len(uniq))
        octets = np.bincount(inverse, weights=flows["bytes"].astype(np.float64), minlength=len(uniq))
        for k, c, p, o in zip(uniq.tolist(), counts.tolist(), packets.tolist(), octets.tolist(), strict=True):
            sums = self.per_port.setdefault((k >> 16, k & 0xFFFF), [0, 0, 0])
            sums[0] += c
            sums[1] += round(p)
            sums[2] += round(o)

    def result(self, stats: dict[str, dict[str, int]]) -> dict[str, Any]:
        per_protocol: dict[str, dict[str, int]] = {}
        for (proto, _), (c, p, o) in self.per_port.items():
            s = per_protocol.setdefault(str(proto), {"flows": 0, "packets": 0, "bytes": 0})
            s["flows"] += c
            s["packets"] += p
            s["bytes"] += o
        ports = [
            {"protocol": proto, "dst_port": port, "flows": c, "packets": p, "bytes": o}
            for (proto, port), (c, p, o) in sorted(self.per_port.items())
        ]
        return {
            "flows": self.flows,
            "packets": self.packets,
            "bytes": self.bytes,
            "per_protocol": per_protocol,
            "per_port": ports,
            "decoder": stats,
        }
