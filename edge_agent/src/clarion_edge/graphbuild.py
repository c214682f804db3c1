"""Turn one window's reduced tables into EdgeGraphs that respect the server's per-batch limits.

Runs once per window per switch, on at most ``max_keys`` rows, so a little Python per node is
affordable here while the per-record work stays in numpy (aggregator.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from clarion_edge import wire
from clarion_edge.grouping import group, hash_columns, last_of_group
from clarion_edge.sitenet import SitePrefixes, ip_texts, mac_texts

Table = dict[str, npt.NDArray[Any]]
MAX_DEVICE_IPS = 16  # wire.Device.ips max_length
COUNTER_MAX = np.uint64(2**63 - 1)
EDGE_KEYS = ("s_hi", "s_lo", "d_hi", "d_lo", "meta")
SGT_KEYS = ("hi", "lo", "tag")
#: meta packs the endpoint kinds and the service: s_tag << 25 | d_tag << 24 | protocol << 16 | port
S_TAG = np.uint64(1 << 25)
D_TAG = np.uint64(1 << 24)


@dataclass
class WindowTables:
    """One switch-window, reduced: FLOWS_TO rows, MAC->IP pairs, latest SGT, latest attachment."""

    edges: Table
    macip: Table
    sgt: Table
    conn: Table

    def keys(self) -> int:
        return len(self.edges["meta"]) + len(self.macip["mac"])


def edge_hash(t: Table) -> npt.NDArray[np.uint64]:
    """The hash of each row's (src, dst, protocol, port) key, the same in every chunk of a window.

    IPv4-mapped addresses and MACs have a zero high half: the high halves are hashed (and xored
    on) only in chunks that have any, which leaves the rows without them unchanged.
    """
    h = hash_columns([t["s_lo"], t["d_lo"], t["meta"]])
    if t["s_hi"].any() or t["d_hi"].any():
        h ^= hash_columns([t["s_hi"], t["d_hi"]], seed=np.uint64(0))
    return h


def reduce_edges(t: Table) -> Table:
    """Sum the counters of equal (src, dst, protocol, port) rows; first = min, last = max."""
    # IPv4-mapped addresses and MACs have a zero high half: skip those key columns when all are zero.
    names = EDGE_KEYS if t["s_hi"].any() or t["d_hi"].any() else ("s_lo", "d_lo", "meta")
    order, starts = group([t[k] for k in names], stable=False)
    if len(starts) == len(order):  # every key distinct: nothing to sum (rows carry no order)
        return dict(t)
    return sum_groups(t, order, starts)


def sum_groups(t: Table, order: npt.NDArray[np.intp], starts: npt.NDArray[np.intp]) -> Table:
    """One row per group of ``order``/``starts``: the key of its first row, counters summed, times widened."""
    firsts = order[starts]
    out = {k: t[k][firsts] for k in EDGE_KEYS}
    for k in ("bytes", "packets", "flows"):
        out[k] = np.add.reduceat(t[k][order], starts)
    out["first"] = np.minimum.reduceat(t["first"][order], starts)
    out["last"] = np.maximum.reduceat(t["last"][order], starts)
    return out


def reduce_distinct(t: Table, keys: tuple[str, ...]) -> Table:
    order, starts = group([t[k] for k in keys], stable=False)
    first = order[starts]
    return {k: v[first] for k, v in t.items()}


def reduce_latest(t: Table, keys: tuple[str, ...]) -> Table:
    """Keep the most recently added row per key (tables are concatenated oldest first)."""
    order, starts = group([t[k] for k in keys])
    if not len(order):
        return t
    rows = last_of_group(order, starts)
    return {k: v[rows] for k, v in t.items()}


def _lookup(table_keys: list[npt.NDArray[np.uint64]], query: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.intp]:
    """Row of ``table_keys`` equal to each query row, -1 where absent (table keys must be unique)."""
    if not len(table_keys[0]) or not len(query[0]):
        return np.full(len(query[0]), -1, dtype=np.intp)
    th = hash_columns(table_keys)
    order = np.argsort(th)
    qh = hash_columns(query)
    pos = np.minimum(np.searchsorted(th[order], qh), len(order) - 1)
    idx = order[pos]
    ok = th[idx] == qh
    for tk, qk in zip(table_keys, query, strict=True):
        ok &= tk[idx] == qk
    return np.where(ok, idx, -1)


def _attach_ips_to_devices(tabs: WindowTables) -> None:
    """An IP seen in this window with exactly one local MAC is that device, not a separate IpEndpoint."""
    m = tabs.macip
    if not len(m["mac"]):
        return
    order, starts = group([m["hi"], m["lo"]])
    counts = np.diff(np.append(starts, len(order)))
    single = order[starts[counts == 1]]
    keys = [m["hi"][single], m["lo"][single]]
    macs = m["mac"][single]
    e = tabs.edges
    for side, tag in (("s", S_TAG), ("d", D_TAG)):
        is_ip = (e["meta"] & tag) == 0
        rows = np.flatnonzero(is_ip)
        hit = _lookup(keys, [e[f"{side}_hi"][rows], e[f"{side}_lo"][rows]])
        rows, hit = rows[hit >= 0], hit[hit >= 0]
        e[f"{side}_hi"][rows] = 0
        e[f"{side}_lo"][rows] = macs[hit]
        e["meta"][rows] |= tag
    tabs.edges = reduce_edges(e)
    # The device's own (MAC-keyed) SGT outranks one learnt by its IP: put remapped rows first.
    s = tabs.sgt
    rows = np.flatnonzero(s["tag"] == 0)
    hit = _lookup(keys, [s["hi"][rows], s["lo"][rows]])
    rows, hit = rows[hit >= 0], hit[hit >= 0]
    s["hi"][rows] = 0
    s["lo"][rows] = macs[hit]
    s["tag"][rows] = 1
    rest = np.ones(len(s["tag"]), dtype=bool)
    rest[rows] = False
    order = np.concatenate([rows, np.flatnonzero(rest)])
    tabs.sgt = reduce_latest({k: v[order] for k, v in s.items()}, SGT_KEYS)


@dataclass
class _Endpoints:
    """Distinct endpoints of a window (Devices: tag 1, lo = MAC; IpEndpoints: tag 0) and each edge's ids."""

    tag: npt.NDArray[np.uint64]
    hi: npt.NDArray[np.uint64]
    lo: npt.NDArray[np.uint64]
    src: npt.NDArray[np.intp]
    dst: npt.NDArray[np.intp]


def _endpoints(e: Table) -> _Endpoints:
    n = len(e["meta"])
    tag = np.concatenate([(e["meta"] & S_TAG) != 0, (e["meta"] & D_TAG) != 0]).astype(np.uint64)
    hi = np.concatenate([e["s_hi"], e["d_hi"]])
    lo = np.concatenate([e["s_lo"], e["d_lo"]])
    order = np.lexsort((lo, hi, 1 - tag))  # Devices first, then IPs, each in address order
    brk = np.zeros(len(order), dtype=bool)
    brk[:1] = True
    for k in (tag, hi, lo):
        ks = k[order]
        brk[1:] |= ks[1:] != ks[:-1]
    gid = np.cumsum(brk) - 1
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = gid
    first = order[brk]
    return _Endpoints(tag[first], hi[first], lo[first], inverse[:n], inverse[n:])


def build_graphs(
    tabs: WindowTables,
    *,
    agent_id: str,
    switch: wire.SwitchInfo,
    window: wire.Window,
    site: SitePrefixes,
    max_nodes: int,
    max_edges: int,
) -> list[wire.EdgeGraph]:
    """The window as one EdgeGraph, or several (each self-contained) when it exceeds the limits."""
    if not len(tabs.edges["meta"]):
        return []
    _attach_ips_to_devices(tabs)
    e = tabs.edges
    e_order = np.lexsort([e[k] for k in reversed(EDGE_KEYS)])
    e = {k: v[e_order] for k, v in e.items()}
    ep = _endpoints(e)
    is_dev = ep.tag == 1
    texts = np.empty(len(ep.tag), dtype=object)
    texts[is_dev] = mac_texts(ep.lo[is_dev].tolist())
    texts[~is_dev] = ip_texts(ep.hi[~is_dev].tolist(), ep.lo[~is_dev].tolist())
    local = site.is_local(ep.hi, ep.lo)

    sgt_row = _lookup([tabs.sgt[k] for k in SGT_KEYS], [ep.hi, ep.lo, ep.tag])
    sgts = np.where(sgt_row >= 0, tabs.sgt["sgt"][np.maximum(sgt_row, 0)] if len(tabs.sgt["sgt"]) else 0, 0)
    dev_ips = _device_ips(tabs.macip)
    conn_row = _lookup([tabs.conn["mac"]], [np.where(is_dev, ep.lo, np.uint64(2**63))])

    nodes: list[wire.Node] = []
    for text, sgt, dev, loc, mac in zip(
        texts.tolist(), sgts.tolist(), is_dev.tolist(), local.tolist(), ep.lo.tolist(), strict=True
    ):
        if dev:
            nodes.append(wire.Device(text, dev_ips.get(mac, []), sgt or None, True))
        else:
            nodes.append(wire.IpEndpoint(text, sgt or None, loc))
    conns: dict[int, wire.ConnectedTo] = {}
    for i in np.flatnonzero(conn_row >= 0).tolist():
        r = int(conn_row[i])
        ifx, vlan = int(tabs.conn["ifx"][r]), int(tabs.conn["vlan"][r])
        conns[i] = wire.ConnectedTo(device=texts[i], interface=str(ifx) if ifx else None, vlan=vlan or None)

    proto = ((e["meta"] >> np.uint64(16)) & np.uint64(255)).tolist()
    port = (e["meta"] & np.uint64(0xFFFF)).tolist()
    first = np.maximum(e["first"], 0)
    flows = list(
        map(
            wire.FlowsTo,
            texts[ep.src].tolist(),
            texts[ep.dst].tolist(),
            proto,
            port,
            np.minimum(e["bytes"], COUNTER_MAX).tolist(),
            np.minimum(e["packets"], COUNTER_MAX).tolist(),
            np.minimum(e["flows"], COUNTER_MAX).tolist(),
            first.tolist(),
            np.maximum(e["last"], first).tolist(),
        )
    )
    svc_id = (e["meta"] & np.uint64(0xFFFFFF)).astype(np.int64)
    has_conn = np.zeros(len(ep.tag), dtype=bool)
    has_conn[list(conns)] = True
    graphs = []
    for a, b in _split(ep.src, ep.dst, svc_id, has_conn, max_nodes, max_edges):
        eps = np.unique(np.concatenate([ep.src[a:b], ep.dst[a:b]]))
        services = np.unique(svc_id[a:b]).tolist()
        graphs.append(
            wire.EdgeGraph(
                schema_version=1,
                agent_id=agent_id,
                seq=1,
                switch=switch,
                window=window,
                nodes=[nodes[i] for i in eps.tolist()]
                + [wire.Service(protocol=(v >> 16) & 255, port=v & 0xFFFF) for v in services],
                edges=flows[a:b] + [conns[i] for i in eps[has_conn[eps]].tolist()],
            )
        )
    return graphs


def _device_ips(macip: Table) -> dict[int, list[str]]:
    """Each MAC's IPs in this window, sorted, at most MAX_DEVICE_IPS (the wire limit)."""
    out: dict[int, list[str]] = {}
    if not len(macip["mac"]):
        return out
    order = np.lexsort((macip["lo"], macip["hi"], macip["mac"]))
    texts = ip_texts(macip["hi"][order].tolist(), macip["lo"][order].tolist())
    for mac, text in zip(macip["mac"][order].tolist(), texts, strict=True):
        ips = out.setdefault(mac, [])
        if len(ips) < MAX_DEVICE_IPS:
            ips.append(text)
    return out


def _split(
    src: npt.NDArray[np.intp],
    dst: npt.NDArray[np.intp],
    svc: npt.NDArray[np.int64],
    has_conn: npt.NDArray[np.bool_],
    max_nodes: int,
    max_edges: int,
) -> list[tuple[int, int]]:
    """Cut the (src-sorted) edges into consecutive runs that each fit the limits.

    A run's cost is its FLOWS_TO edges plus a CONNECTED_TO per attached device in it, and its
    distinct endpoints plus services; a run that does not fit is shrunk in proportion and retried.
    """
    n = len(src)
    runs: list[tuple[int, int]] = []
    pos = 0
    while pos < n:
        k = min(max_edges, n - pos)
        while True:
            eps = np.unique(np.concatenate([src[pos : pos + k], dst[pos : pos + k]]))
            nodes = len(eps) + len(np.unique(svc[pos : pos + k]))
            edges = k + int(np.count_nonzero(has_conn[eps]))
            if (nodes <= max_nodes and edges <= max_edges) or k == 1:
                break
            k = max(1, min(k - 1, int(k * min(max_nodes / nodes, max_edges / edges) * 0.98)))
        runs.append((pos, pos + k))
        pos += k
    return runs
