"""Turn a synthetic campus into the EdgeGraphs its edge agents would send.

One agent per switch, one graph per window (split when it would pass the edge cap), flows
recorded at the switch of the local client (or of the local server for inbound internet
traffic), aggregated per (src, dst, protocol, port). The true role never appears here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clarion.synth.model import DAY_MS
from clarion_edge import wire

if TYPE_CHECKING:
    from clarion.synth.campus import Campus

MAX_EDGES = 50_000
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}$")
_NODE_BITS = 19  # node ids (devices, then remote hosts) stay below 2**19 by the spec limits


def edge_graphs(
    campus: Campus, agent_id_prefix: str = "edge-", start_seq: int = 1, max_edges: int = MAX_EDGES
) -> Iterator[wire.EdgeGraph]:
    """Sealed EdgeGraphs window by window, switch by switch; seq rises by one per graph of an agent."""
    if not (1 <= max_edges <= MAX_EDGES):
        raise ValueError(f"max_edges={max_edges!r} is out of range (accepted: 1 to {MAX_EDGES})")
    if agent_id_prefix and not _PREFIX_RE.match(agent_id_prefix):
        raise ValueError(
            f"agent_id_prefix={agent_id_prefix!r} is not accepted (letters, digits and . _ : @ / -, "
            "starting with a letter or digit, at most 64 characters)"
        )
    if not isinstance(start_seq, int) or not (1 <= start_seq <= 2**62):
        raise ValueError(f"start_seq={start_seq!r} is out of range (accepted: 1 to 2**62)")
    spec = campus.spec
    n_sw = len(campus.switches)
    n_win = -(-spec.days * DAY_MS // spec.window_ms)
    agg = _aggregate(campus, n_sw)
    conn_g, conn_dev = _active_devices(campus, n_sw)
    keys = np.array([d.key for d in campus.devices] + list(campus.remote_hosts), dtype=object)
    ips = np.array([d.ip for d in campus.devices] + list(campus.remote_hosts), dtype=object)
    has_mac = np.array([d.mac is not None for d in campus.devices] + [False] * len(campus.remote_hosts))
    nodes = _NodeCache(campus)
    seqs = [start_seq] * n_sw
    span_end = spec.start_ms + spec.days * DAY_MS
    for w in range(n_win):
        window = wire.Window(
            start=spec.start_ms + w * spec.window_ms, end=min(spec.start_ms + (w + 1) * spec.window_ms, span_end)
        )
        for s, switch in enumerate(campus.switches):
            g = w * n_sw + s
            fa, fb = np.searchsorted(agg["g"], [g, g + 1])
            ca, cb = np.searchsorted(conn_g, [g, g + 1])
            info = wire.SwitchInfo(switch_id=switch.switch_id, name=switch.name, mgmt_ip=switch.mgmt_ip)
            agent = agent_id_prefix + switch.switch_id
            devs = conn_dev[ca:cb]
            total = len(devs) + (fb - fa)
            hidden = _Dropout(spec.seed, w, spec.mac_dropout, has_mac)
            for c in range(max(1, -(-total // max_edges))):
                lo, hi = c * max_edges, min((c + 1) * max_edges, total)
                d_part = devs[lo : min(hi, len(devs))]
                f_lo, f_hi = fa + max(lo - len(devs), 0), fa + max(hi - len(devs), 0)
                ends = _Ends(keys, ips, hidden)
                graph = _graph(campus, agg, ends, nodes, switch.exports_sgt, d_part, f_lo, f_hi)
                yield wire.EdgeGraph(
                    schema_version=1,
                    agent_id=agent,
                    seq=seqs[s],
                    switch=info,
                    window=window,
                    nodes=graph[0],
                    edges=graph[1],
                ).sealed()
                seqs[s] += 1


def write_edge_graphs(
    campus: Campus, out_dir: str | Path, agent_id_prefix: str = "edge-", start_seq: int = 1, max_edges: int = MAX_EDGES
) -> list[Path]:
    """Write every graph as ``<agent_id>-<seq>.json`` (wire encoding), for ``clarion-edge send FILE`` demos."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for graph in edge_graphs(campus, agent_id_prefix, start_seq, max_edges):
        path = out / f"{graph.agent_id}-{graph.seq:010d}.json"
        path.write_bytes(wire.encode(graph))
        paths.append(path)
    return paths


def _node_ids(ends: np.ndarray, n_dev: int) -> np.ndarray:
    ends = ends.astype(np.int64)
    return np.where(ends >= 0, ends, n_dev + (-1 - ends))


def _aggregate(campus: Campus, n_sw: int) -> dict[str, np.ndarray]:
    """Sum rows per (window, switch, src, dst, protocol, port), sorted by that key."""
    f = campus.flows
    spec = campus.spec
    n_dev = len(campus.devices)
    src, dst = f["src"].astype(np.int64), f["dst"].astype(np.int64)
    local = np.where(src >= 0, src, dst)  # the local end whose switch records the flow
    sw = campus.switch_index[local].astype(np.int64)
    w = (f["first_ms"] - spec.start_ms) // spec.window_ms
    g = w * n_sw + sw
    k1 = (g << _NODE_BITS) | _node_ids(src, n_dev)
    k2 = (_node_ids(dst, n_dev) << 24) | (f["protocol"].astype(np.int64) << 16) | f["port"].astype(np.int64)
    order = np.lexsort((k2, k1))
    k1, k2 = k1[order], k2[order]
    if len(order):
        change = np.concatenate([[True], (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1])])
        starts = np.flatnonzero(change)
    else:
        starts = np.zeros(0, dtype=np.int64)
    fs = f[order]
    return {
        "g": k1[starts] >> _NODE_BITS,
        "src": k1[starts] & ((1 << _NODE_BITS) - 1),
        "dst": k2[starts] >> 24,
        "protocol": (k2[starts] >> 16) & 0xFF,
        "port": k2[starts] & 0xFFFF,
        "bytes": np.add.reduceat(fs["bytes"], starts) if len(starts) else np.zeros(0, np.uint64),
        "packets": np.add.reduceat(fs["packets"], starts) if len(starts) else np.zeros(0, np.uint64),
        "flows": np.add.reduceat(fs["flows"].astype(np.uint64), starts) if len(starts) else np.zeros(0, np.uint64),
        "first": np.minimum.reduceat(fs["first_ms"], starts) if len(starts) else np.zeros(0, np.int64),
        "last": np.maximum.reduceat(fs["last_ms"], starts) if len(starts) else np.zeros(0, np.int64),
    }


def _active_devices(campus: Campus, n_sw: int) -> tuple[np.ndarray, np.ndarray]:
    """(graph key, device) of every device with a MAC seen in a window, keyed by its own switch."""
    f = campus.flows
    spec = campus.spec
    n_dev = len(campus.devices)
    w = (f["first_ms"] - spec.start_ms) // spec.window_ms
    ends = np.concatenate([f["src"], f["dst"]]).astype(np.int64)
    ws = np.concatenate([w, w])
    keep = ends >= 0
    pairs = np.unique(ws[keep] * n_dev + ends[keep])
    dev = pairs % n_dev
    has_mac = np.array([d.mac is not None for d in campus.devices], dtype=bool)
    dev = dev[has_mac[dev]]
    pw = pairs[has_mac[pairs % n_dev]] // n_dev
    g = pw * n_sw + campus.switch_index[dev].astype(np.int64)
    order = np.lexsort((dev, g))
    return g[order], dev[order]


class _Dropout:
    """Which devices' MACs are missing in one window: a hash of (seed, device, window), no state."""

    def __init__(self, seed: int, window: int, share: float, has_mac: np.ndarray) -> None:
        self._salt = np.uint64((seed * 0x9E3779B97F4A7C15 + window * 0xBF58476D1CE4E5B9) % 2**64)
        self._share = share
        self._has_mac = has_mac

    def __call__(self, nids: np.ndarray) -> np.ndarray:
        if self._share <= 0.0 or not len(nids):
            return np.zeros(len(nids), dtype=bool)
        x = nids.astype(np.uint64) * np.uint64(0x94D049BB133111EB) ^ self._salt
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
        hidden: np.ndarray = ((x >> np.uint64(11)).astype(np.float64) / 2.0**53 < self._share) & self._has_mac[nids]
        return hidden


class _Ends:
    """How endpoints are named in one window: MAC (or IP when IP-only), IP when the MAC dropped out."""

    def __init__(self, keys: np.ndarray, ips: np.ndarray, hidden: _Dropout) -> None:
        self.keys, self.ips, self.hidden = keys, ips, hidden

    def names(self, nids: np.ndarray) -> list[str]:
        out = self.keys[nids]
        drop = self.hidden(nids)
        out[drop] = self.ips[nids[drop]]
        names: list[str] = out.tolist()
        return names


class _NodeCache:
    """Device and IpEndpoint nodes built once, with and without the SGT the switch may not export."""

    def __init__(self, campus: Campus) -> None:
        self._campus = campus
        size = len(campus.devices) + len(campus.remote_hosts)
        self._with: list[wire.Device | wire.IpEndpoint | None] = [None] * size
        self._without: list[wire.Device | wire.IpEndpoint | None] = [None] * size

    def many(self, ids: np.ndarray, exports: bool, hidden: np.ndarray) -> list[wire.Node]:
        cache = self._with if exports else self._without
        out: list[wire.Node] = []
        for nid, drop in zip(ids.tolist(), hidden.tolist(), strict=True):
            if drop:
                out.append(self._make(nid, exports, mac_seen=False))
                continue
            node = cache[nid]
            if node is None:
                node = cache[nid] = self._make(nid, exports, mac_seen=True)
            out.append(node)
        return out

    def _make(self, nid: int, exports: bool, mac_seen: bool) -> wire.Device | wire.IpEndpoint:
        devices = self._campus.devices
        if nid >= len(devices):
            return wire.IpEndpoint(ip=self._campus.remote_hosts[nid - len(devices)], local=False)
        d = devices[nid]
        sgt = d.sgt if exports else None
        if d.mac is None or not mac_seen:
            return wire.IpEndpoint(ip=d.ip, sgt=sgt, local=True)
        return wire.Device(mac=d.mac, ips=[d.ip], sgt=sgt, local=True)


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hashing path is slow on many small arrays)."""
    ordered: np.ndarray = np.sort(values)
    if len(ordered) < 2:
        return ordered
    distinct: np.ndarray = ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]
    return distinct


def _graph(
    campus: Campus,
    agg: dict[str, np.ndarray],
    ends: _Ends,
    nodes: _NodeCache,
    exports: bool,
    devs: np.ndarray,
    f_lo: int,
    f_hi: int,
) -> tuple[list[wire.Node], list[wire.Edge]]:
    src = agg["src"][f_lo:f_hi]
    dst = agg["dst"][f_lo:f_hi]
    devs = devs[~ends.hidden(devs)]  # no CONNECTED_TO without the MAC
    ids = _unique(np.concatenate([devs, src, dst]))
    node_list = nodes.many(ids, exports, ends.hidden(ids))
    svc = _unique((agg["protocol"][f_lo:f_hi] << 16) | agg["port"][f_lo:f_hi])
    node_list.extend(wire.Service(protocol=v >> 16, port=v & 0xFFFF) for v in svc.tolist())
    edges: list[wire.Edge] = []
    for i in devs.tolist():
        d = campus.devices[i]
        assert d.mac is not None
        edges.append(wire.ConnectedTo(device=d.mac, interface=d.interface, vlan=d.vlan))
    # FlowsTo fields in declaration order: src, dst, protocol, port, bytes, packets, flows, first, last.
    columns: list[list[Any]] = [ends.names(src), ends.names(dst)]
    columns += [agg[name][f_lo:f_hi].tolist() for name in ("protocol", "port", "bytes", "packets", "flows")]
    columns += [agg["first"][f_lo:f_hi].tolist(), agg["last"][f_lo:f_hi].tolist()]
    edges.extend(itertools.starmap(wire.FlowsTo, zip(*columns, strict=True)))
    return node_list, edges
