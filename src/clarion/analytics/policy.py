"""The observed SGT × SGT policy matrix: per cell, traffic totals and the services seen.

Pure: rows from the graph in (one per source SGT, destination SGT, service), cells out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clarion.ingest.transform import service_key

UNKNOWN_SGT = 0


@dataclass(slots=True)
class ServiceTraffic:
    protocol: int
    port: int
    bytes: int = 0
    packets: int = 0
    flows: int = 0

    @property
    def key(self) -> str:
        return service_key(self.protocol, self.port)


@dataclass(slots=True)
class Cell:
    src: int
    dst: int
    bytes: int = 0
    packets: int = 0
    flows: int = 0
    services: list[ServiceTraffic] = field(default_factory=list)


@dataclass(slots=True)
class Matrix:
    sgts: list[int]
    cells: list[Cell]

    def cell(self, src: int, dst: int) -> Cell | None:
        return next((c for c in self.cells if c.src == src and c.dst == dst), None)


def build_matrix(rows: Iterable[Mapping[str, Any]]) -> Matrix:
    """Fold (src, dst, protocol, port, totals) rows into cells, services sorted by bytes."""
    cells: dict[tuple[int, int], Cell] = {}
    for r in rows:
        src, dst = int(r["src"]), int(r["dst"])
        c = cells.get((src, dst))
        if c is None:
            c = cells[(src, dst)] = Cell(src, dst)
        svc = ServiceTraffic(int(r["protocol"]), int(r["port"]), int(r["bytes"]), int(r["packets"]), int(r["flows"]))
        c.bytes += svc.bytes
        c.packets += svc.packets
        c.flows += svc.flows
        c.services.append(svc)
    for c in cells.values():
        c.services.sort(key=lambda s: (-s.bytes, s.protocol, s.port))
    ordered = sorted(cells.values(), key=lambda c: (c.src, c.dst))
    sgts = sorted({c.src for c in ordered} | {c.dst for c in ordered})
    return Matrix(sgts=sgts, cells=ordered)
