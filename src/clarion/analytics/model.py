"""Parameters and results of a clustering run: plain records a job stores and an API shows.

Kept apart from the algorithms so the store, the API and the tests can use them without numpy work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Limits on parameters: outside them HDBSCAN either finds nothing useful or takes unbounded time.
MAX_SVD_COMPONENTS = 30  # KD-tree HDBSCAN slows sharply with dimensions (ADR 0003)
MAX_MIN_CLUSTER_SIZE = 100_000


class ParamsError(ValueError):
    """A ClusteringParams value out of range; the message names the field and the accepted range."""


@dataclass(frozen=True)
class ClusteringParams:
    """Knobs of one run; the defaults were chosen on the synthetic campus (see docs/clustering.md)."""

    #: Smallest group worth a cluster (and an SGT); None: 10, or 0.25 % of the devices if more.
    min_cluster_size: int | None = None
    #: HDBSCAN's density smoothing: larger marks more devices as noise (20: measured on the synthetic campus).
    min_samples: int = 20
    #: Dimensions the features are reduced to before HDBSCAN.
    svd_components: int = 12
    #: Re-cluster each cluster in its own projection (finds small roles the global projection blurs).
    refine: bool = True
    #: Weight of identity features (AD groups, ISE profile); 0 turns them off.
    identity_weight: float = 0.0
    #: Weights of the behaviour blocks.
    services_weight: float = 1.0
    peers_weight: float = 0.4
    volume_weight: float = 0.3
    time_weight: float = 0.3
    #: A port above 1023 seen on fewer devices than this (or than this share of the clustered devices)
    #: is bucketed with its kind: dynamic ports (RTP, ephemeral) are not services.
    min_port_devices: int = 5
    min_port_share: float = 0.004
    #: The share of members an existing SGT needs to be recommended; below it a new SGT is proposed.
    sgt_majority: float = 0.5
    #: Overlap a cluster needs with one of the previous run to keep its id.
    match_min_jaccard: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        mcs = self.min_cluster_size
        if mcs is not None and (not isinstance(mcs, int) or not 2 <= mcs <= MAX_MIN_CLUSTER_SIZE):
            raise ParamsError(f"min_cluster_size={mcs!r} is out of range (accepted: 2 to {MAX_MIN_CLUSTER_SIZE})")
        if not isinstance(self.min_samples, int) or not 1 <= self.min_samples <= 1000:
            raise ParamsError(f"min_samples={self.min_samples!r} is out of range (accepted: 1 to 1000)")
        if not isinstance(self.svd_components, int) or not 2 <= self.svd_components <= MAX_SVD_COMPONENTS:
            raise ParamsError(
                f"svd_components={self.svd_components!r} is out of range (accepted: 2 to {MAX_SVD_COMPONENTS})"
            )
        for name in ("identity_weight", "services_weight", "peers_weight", "volume_weight", "time_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 10.0:
                raise ParamsError(f"{name}={value!r} is out of range (accepted: 0.0 to 10.0)")
        if not isinstance(self.min_port_devices, int) or not 1 <= self.min_port_devices <= 10_000:
            raise ParamsError(f"min_port_devices={self.min_port_devices!r} is out of range (accepted: 1 to 10000)")
        for name in ("sgt_majority", "match_min_jaccard", "min_port_share"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < float(value) <= 1.0:
                raise ParamsError(f"{name}={value!r} is out of range (accepted: above 0.0, up to 1.0)")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ParamsError(f"seed={self.seed!r} is out of range (accepted: 0 to 2**32-1)")

    def effective_min_cluster_size(self, n_devices: int) -> int:
        """The min_cluster_size used for ``n_devices`` local devices."""
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(10, round(n_devices * 0.0025))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reason:
    """One feature that sets a cluster apart: its value among members and among the rest."""

    feature: str
    text: str
    member_value: float
    other_value: float
    #: Lift (share ratio) for services, z-score for numeric features; larger means more distinctive.
    score: float


@dataclass(frozen=True)
class Member:
    device_id: str
    probability: float
    sgt: int | None = None


@dataclass(frozen=True)
class Recommendation:
    """The SGT a cluster should carry: an existing one most members have, or a new one to create."""

    sgt: int | None
    sgt_name: str
    is_new: bool
    #: Share of members already carrying ``sgt`` (0 for a new SGT).
    confidence: float
    #: Members whose current SGT is not the recommended one (missing included), sorted.
    disagreeing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Cluster:
    cluster_id: int
    label: str
    size: int
    #: Mean membership probability of the members (HDBSCAN's strength of membership, 0..1).
    confidence: float
    #: How far the cluster stands from its nearest neighbour cluster: 1 well apart, 0.5 touching.
    separation: float
    reasons: list[Reason]
    members: list[Member]
    recommendation: Recommendation


@dataclass(frozen=True)
class ClusteringRun:
    run_id: str
    params: ClusteringParams
    created_ms: int
    clusters: list[Cluster]
    noise: list[str]
    #: sha256 of the snapshot's content and the parameters: equal digests mean equal results.
    input_digest: str = ""
    #: The first id no cluster of this run or an earlier one has had: fresh clusters of the next run start here.
    next_cluster_id: int = 0
    #: Seconds spent per stage (features, hdbscan, labels), for operators and benchmarks.
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (nested dicts and lists), for storing a run or serving it."""
        return asdict(self)

    def labels_by_device(self) -> dict[str, int]:
        """device id -> cluster id (noise devices map to -1)."""
        out = dict.fromkeys(self.noise, -1)
        for c in self.clusters:
            for m in c.members:
                out[m.device_id] = c.cluster_id
        return out
