"""How well clusters match known roles: ARI, purity per cluster, and which roles were found.

Only for evaluation (synthetic campus, labelled pilots): the true roles never reach the features.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import adjusted_rand_score  # type: ignore[import-untyped]

from clarion.analytics.model import ClusteringRun


@dataclass(frozen=True)
class ClusterPurity:
    cluster_id: int
    size: int
    majority_role: str
    #: Share of members doing the majority role, as their role or as the second job they also do.
    purity: float
    #: Share of members whose (primary) role is the majority role: equal to ``purity`` without second jobs.
    primary_purity: float = 0.0


@dataclass(frozen=True)
class QualityReport:
    #: ARI over every clustered-or-noise device, noise counted as one more group.
    ari: float
    #: ARI over the devices that got a cluster (how clean the clusters are).
    ari_clustered: float
    noise_share: float
    clusters: list[ClusterPurity]
    #: Roles with at least ``min_role_size`` devices, and whether a cluster represents each.
    roles_found: dict[str, bool] = field(default_factory=dict)
    role_sizes: dict[str, int] = field(default_factory=dict)
    #: The same check counting only primary roles (a DC that also serves DHCP is then wrong among DHCP servers).
    roles_found_primary: dict[str, bool] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        missing = sorted(r for r, ok in self.roles_found.items() if not ok)
        missing_primary = sorted(r for r, ok in self.roles_found_primary.items() if not ok)
        return {
            "ari": round(self.ari, 4),
            "ari_clustered": round(self.ari_clustered, 4),
            "noise_share": round(self.noise_share, 4),
            "clusters": len(self.clusters),
            "roles_found": sum(self.roles_found.values()),
            "roles_expected": len(self.roles_found),
            "roles_missing": missing,
            "roles_found_primary_only": sum(self.roles_found_primary.values()),
            "roles_missing_primary_only": missing_primary,
        }


def adjusted_rand(true: Sequence[str], pred: Sequence[int]) -> float:
    return float(adjusted_rand_score(list(true), list(pred)))


def evaluate(
    run: ClusteringRun,
    true_role: Callable[[str], str],
    min_role_size: int = 20,
    min_purity: float = 0.8,
    second_role: Callable[[str], str | None] | None = None,
) -> QualityReport:
    """Score a run against the true role of each device (``true_role(device_id)``).

    A role counts as found when some cluster has it as majority role with purity >= ``min_purity``.
    ``second_role(device_id)`` names a second job a device also does (a DC that also serves DHCP): such a
    member counts as pure in a cluster of either of its roles (ADR 0014); the majority role and the ARI
    use the primary role only, so a second job never adds a vote or changes the ARI.
    """
    by_device = run.labels_by_device()
    devices = sorted(by_device)
    truth = [true_role(d) for d in devices]
    pred = [by_device[d] for d in devices]
    ari = adjusted_rand(truth, pred)
    clustered = [i for i, p in enumerate(pred) if p >= 0]
    ari_c = adjusted_rand([truth[i] for i in clustered], [pred[i] for i in clustered]) if clustered else 0.0
    purities = []
    for c in run.clusters:
        counts = Counter(true_role(m.device_id) for m in c.members)
        role, count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        doing = count
        if second_role is not None:
            doing += sum(1 for m in c.members if true_role(m.device_id) != role and second_role(m.device_id) == role)
        size = max(c.size, 1)
        purities.append(ClusterPurity(c.cluster_id, c.size, role, doing / size, count / size))
    sizes = Counter(truth)
    expected = [role for role, size in sorted(sizes.items()) if size >= min_role_size]
    found = {r: any(p.majority_role == r and p.purity >= min_purity for p in purities) for r in expected}
    primary = {r: any(p.majority_role == r and p.primary_purity >= min_purity for p in purities) for r in expected}
    noise = float(np.mean([p < 0 for p in pred])) if pred else 0.0
    return QualityReport(ari, ari_c, noise, purities, found, dict(sorted(sizes.items())), primary)
