"""Behavioural features: exact values on a hand-made flow table, and the inputs they must never read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clarion.analytics.features import PORT_EPHEMERAL, PORT_RARE, build_features, service_name
from clarion.analytics.model import ClusteringParams, ParamsError
from clarion.analytics.snapshot import EDGE_DTYPE, GraphSnapshot, SnapshotError

HOUR = 3_600_000
T0 = 1_793_577_600_000  # 2026-11-02T00:00Z
DAY0 = T0 // 86_400_000


def _snapshot(rows: list[tuple[int, int, int, int, int]], n_local: int = 5, n_remote: int = 1) -> GraphSnapshot:
    """rows: (src, dst, protocol, port, flows); each row 1000 bytes, 10 packets, at hour ``flows % 24``."""
    edges = np.zeros(len(rows), dtype=EDGE_DTYPE)
    for i, (s, d, proto, port, flows) in enumerate(rows):
        start = T0 + (flows % 24) * HOUR
        edges[i] = (s, d, proto, port, 1000, 10, flows, start, start + 60_000, DAY0)
    ids = [f"00:00:00:00:00:{i:02x}" for i in range(n_local)] + [f"198.51.100.{i}" for i in range(n_remote)]
    local = np.array([True] * n_local + [False] * n_remote)
    return GraphSnapshot(device_ids=ids, local=local, edges=edges)


# Devices 0 and 3: clients of device 1's jetdirect, 0 also of the remote web (5); device 1: a printer;
# device 2: a rare high port and an ephemeral one; device 4: silent.
ROWS = [
    (0, 1, 6, 9100, 4),
    (0, 5, 6, 443, 6),
    (2, 0, 6, 40001, 1),
    (2, 0, 17, 50000, 2),
    (1, 2, 1, 2048, 3),
    (3, 1, 6, 9100, 5),
]
PARAMS = ClusteringParams(min_port_devices=3)


def test_services_are_bucketed_and_counted_per_direction() -> None:
    f = build_features(_snapshot(ROWS), PARAMS)
    names = f.service_names
    # tcp/443 is seen on two devices only (0 and the remote host): a rare well-known port.
    assert names == ["icmp/0", "tcp/9100", "tcp/1024+rare", "tcp/<1024 rare", "udp/49152+"]
    assert list(f.rows) == [0, 1, 2, 3, 4]
    used = f.used.toarray()
    offered = f.offered.toarray()
    col = {n: j for j, n in enumerate(names)}
    assert used[0, col["tcp/9100"]] == 4
    assert used[0, col["tcp/<1024 rare"]] == 6
    assert offered[1, col["tcp/9100"]] == 9
    assert offered[0, col["tcp/1024+rare"]] == 1
    assert used[2, col["udp/49152+"]] == 2
    assert used[1, col["icmp/0"]] == 3
    assert used[4].sum() == 0
    assert offered[4].sum() == 0


def test_service_names_read_as_an_engineer_writes_them() -> None:
    assert service_name(6, 443) == "tcp/443"
    assert service_name(17, PORT_EPHEMERAL) == "udp/49152+"
    assert service_name(6, PORT_RARE) == "tcp/1024+rare"
    assert service_name(47, 0) == "gre/0"


def test_a_registered_port_seen_on_enough_devices_stays_a_service() -> None:
    rows = [(i, 5, 6, 3001, 2) for i in range(5)]
    f = build_features(_snapshot(rows, n_local=6, n_remote=0), ClusteringParams(min_port_devices=5))
    assert f.service_names == ["tcp/3001"]
    f = build_features(_snapshot(rows, n_local=6, n_remote=0), ClusteringParams(min_port_devices=7))
    assert f.service_names == ["tcp/1024+rare"]


def test_scalars_measure_volume_balance_peers_and_time() -> None:
    f = build_features(_snapshot(ROWS), PARAMS)
    s = {name: f.scalars[:, j] for j, name in enumerate(f.scalar_names)}
    # Device 0: 10 flows out (to 1 and the remote host), 3 in (from 2).
    assert s["log flows out"][0] == pytest.approx(np.log1p(10))
    assert s["log flows in"][0] == pytest.approx(np.log1p(3))
    assert s["client share of flows"][0] == pytest.approx(10 / 13)
    assert s["client share of flows"][1] == pytest.approx(3 / 12)
    assert s["log distinct servers reached"][0] == pytest.approx(np.log1p(2))
    assert s["log distinct clients served"][0] == pytest.approx(np.log1p(1))
    # Peers of 0: devices 1, 2 and the remote host -> one third remote.
    assert s["share of remote peers"][0] == pytest.approx(1 / 3)
    assert s["log bytes per packet out"][0] == pytest.approx(np.log1p(100))
    # Rows start at hours 4, 6, 1, 2, 3, 5 of the day: the span is 6 hours. Device 0 started flows at hours 4
    # and 6; at hours 1 and 2 it only received stray flows (a rare and an ephemeral port), which do not count.
    # Device 1 started a flow at hour 3 and served jetdirect (a kept service) at hours 4 and 5.
    assert s["share of hours active"][0] == pytest.approx(2 / 6)
    assert s["share of hours active"][1] == pytest.approx(3 / 6)
    assert s["share of days active"][0] == 1
    assert s["share of days active"][4] == 0
    # Time of day: device 1's flows sit in hours 3 (3 flows), 4 (4) and 5 (5): the 00-04 and 04-08 bins.
    tod = [s[f"share of flows {4 * i:02d}-{4 * i + 4:02d} UTC"][1] for i in range(6)]
    assert tod == pytest.approx([3 / 12, 9 / 12, 0, 0, 0, 0])


def test_a_device_only_probed_by_a_scanner_is_not_active() -> None:
    """A scanner's probes of rare low ports reach every device every day; they are not the device's activity."""
    probes = [(2, 4, 6, port, 7) for port in (23, 135, 139)]
    f = build_features(_snapshot(ROWS + probes), PARAMS)
    s = {name: f.scalars[:, j] for j, name in enumerate(f.scalar_names)}
    assert s["log flows in"][4] == pytest.approx(np.log1p(21))
    assert s["share of days active"][4] == 0
    assert s["share of hours active"][4] == 0
    assert s["share of days active"][2] == 1  # the scanner itself started those flows


def test_features_are_deterministic_and_bounded_by_svd_components() -> None:
    snap = _snapshot(ROWS * 3)
    a = build_features(snap, ClusteringParams(svd_components=3))
    b = build_features(snap, ClusteringParams(svd_components=3))
    assert a.matrix.shape == (5, 3)
    assert np.array_equal(a.matrix, b.matrix)


def test_identity_weight_zero_ignores_identity_and_positive_uses_it() -> None:
    base = _snapshot(ROWS)
    with_identity = dataclasses.replace(
        base,
        ad_groups=[["Engineering"], [], ["Finance"], ["Engineering"], [], []],
        profile=["Windows11-Workstation", "HP-Printer", None, "Windows11-Workstation", None, None],
    )
    off = ClusteringParams(identity_weight=0.0, svd_components=10)
    assert np.array_equal(build_features(base, off).matrix, build_features(with_identity, off).matrix)
    on = ClusteringParams(identity_weight=1.0, svd_components=10)
    assert not np.allclose(build_features(base, on).matrix, build_features(with_identity, on).matrix)


def test_snapshot_has_no_field_for_a_role_or_device_type() -> None:
    names = {f.name for f in dataclasses.fields(GraphSnapshot)}
    assert names == {"device_ids", "local", "edges", "ad_groups", "profile", "sgt", "sgt_names"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"local": np.array([True, False])}, "GraphSnapshot.local must be a bool array of shape (6,)"),
        ({"device_ids": ["a", "a", "b", "c", "d", "e"]}, "duplicates"),
        ({"profile": ["x"]}, "GraphSnapshot.profile has 1 entries; one per device (6) is needed"),
        ({"sgt": [1, 2, 3, 70000, None, None]}, "GraphSnapshot.sgt[3]=70000 is not an SGT"),
        ({"edges": np.zeros(2, dtype=[("src", "i4")])}, "GraphSnapshot.edges lacks fields"),
    ],
)
def test_bad_snapshots_are_refused_with_the_field_named(change: dict[str, object], message: str) -> None:
    snap = dataclasses.replace(_snapshot(ROWS), **change)  # type: ignore[arg-type]
    with pytest.raises(SnapshotError) as err:
        snap.validate()
    assert message in str(err.value)


def test_an_edge_pointing_outside_the_device_list_is_refused() -> None:
    snap = _snapshot(ROWS)
    snap.edges["dst"][2] = 9
    with pytest.raises(SnapshotError, match=r"edges\[2\]\.dst=9 is not a device index \(accepted: 0 to 5\)"):
        snap.validate()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"svd_components": 31}, "svd_components=31 is out of range (accepted: 2 to 30)"),
        ({"min_cluster_size": 1}, "min_cluster_size=1 is out of range"),
        ({"identity_weight": -1.0}, "identity_weight=-1.0 is out of range"),
        ({"sgt_majority": 0.0}, "sgt_majority=0.0 is out of range"),
    ],
)
def test_bad_params_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError) as err:
        ClusteringParams(**kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_distinct_buckets_per_device_agree_on_the_dense_and_sparse_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    from clarion.analytics import activity

    dev = np.array([0, 0, 0, 2, 2, 3, 3, 3, 3], dtype=np.int64)
    bucket = np.array([5, 5, 6, 7, 9, 5, 6, 7, 5], dtype=np.int64)
    dense = activity.distinct_per_device(dev, bucket, 5)
    monkeypatch.setattr(activity, "DENSE_DISTINCT_CELLS", 0)
    sparse = activity.distinct_per_device(dev, bucket, 5)
    assert dense.tolist() == sparse.tolist() == [2.0, 0.0, 2.0, 3.0, 0.0]


def test_a_port_is_rare_by_distinct_devices_not_by_flow_rows() -> None:
    from clarion.analytics.ports import PORT_RARE_LOW, bucket_ports

    # tcp/8080 on 3 devices (many rows), tcp/1234 on 2 devices, udp/53 on 4 devices, tcp/99 on 1 device.
    protocol = np.array([6] * 6 + [6, 6] + [17] * 4 + [6], dtype=np.int64)
    port = np.array([8080] * 6 + [1234, 1234] + [53] * 4 + [99], dtype=np.int64)
    src = np.array([0, 0, 0, 1, 1, 1, 4, 4, 0, 1, 2, 3, 6], dtype=np.int64)
    dst = np.array([9, 9, 9, 9, 9, 9, 5, 5, 8, 8, 8, 8, 6], dtype=np.int64)
    out = bucket_ports(protocol, port, src, dst, min_devices=4)
    # 8080: devices {0, 1, 9} -> rare; 1234: {4, 5} -> rare; 53: {0..3, 8} -> kept; 99: {6} -> rare low.
    assert out.tolist() == [PORT_RARE] * 8 + [53] * 4 + [PORT_RARE_LOW]


def test_services_are_numbered_exactly_as_a_sorted_unique_would() -> None:
    from clarion.analytics.ports import number_services

    rng = np.random.default_rng(3)
    protocol = rng.choice([1, 6, 17, 47, 255], size=5000).astype(np.int64)
    port = rng.choice([0, 22, 443, 65535, PORT_EPHEMERAL, PORT_RARE, 65538], size=5000).astype(np.int64)
    codes, idx = number_services(protocol, port)
    want_codes, want_idx = np.unique(protocol * 70_000 + port, return_inverse=True)
    assert codes.tolist() == want_codes.tolist()
    assert idx.tolist() == want_idx.ravel().tolist()
    empty = np.zeros(0, dtype=np.int64)
    assert [len(a) for a in number_services(empty, empty)] == [0, 0]
