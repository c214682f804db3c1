"""GraphQL for behavioural clustering: run it as a job, follow the job, read runs and clusters."""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError

from clarion.analytics.model import ClusteringParams, ParamsError
from clarion.api.auth import Role
from clarion.api.graphql.context import Context
from clarion.api.graphql.scalars import Long
from clarion.api.graphql.types import Device, day_range
from clarion.jobs.runner import Job as RunnerJob

Info = strawberry.Info[Context, None]


@strawberry.enum
class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@strawberry.type(description="A background job (e.g. clustering) and how far it got.")
class Job:
    id: strawberry.ID
    kind: str
    state: JobState
    progress: float = strawberry.field(description="0.0 to 1.0")
    message: str
    error: str | None
    run_id: str | None = strawberry.field(description="For clustering: the run it produced.")
    created_at: Long
    started_at: Long | None
    finished_at: Long | None

    @classmethod
    def from_job(cls, j: RunnerJob) -> Job:
        return cls(
            id=strawberry.ID(j.id), kind=j.kind, state=JobState(j.state.value), progress=round(j.progress, 4),
            message=j.message, error=j.error, run_id=j.result.get("run_id"), created_at=Long(j.created_ms),
            started_at=None if j.started_ms is None else Long(j.started_ms),
            finished_at=None if j.finished_ms is None else Long(j.finished_ms),
        )  # fmt: skip


@strawberry.type(description="A feature that sets the cluster apart, with its value inside and outside it.")
class ClusterReason:
    feature: str
    text: str
    member_value: float
    other_value: float
    score: float


@strawberry.type(description="The SGT a cluster should carry, and its members that do not carry it now.")
class SgtRecommendation:
    sgt: int | None = strawberry.field(description="null when a new SGT is proposed")
    sgt_name: str
    is_new: bool
    confidence: float = strawberry.field(description="Share of members already carrying the SGT (0 when new).")
    disagreeing_count: int
    disagreeing: list[str] = strawberry.field(description="Up to 100 device uids whose SGT disagrees.")


@strawberry.type
class ClusterMember:
    uid: str
    probability: float
    sgt: int | None

    @strawberry.field(description="The member device.")
    async def device(self, info: Info) -> Device | None:
        rows = await info.context.read("query/device_by_uid", {"uid": self.uid})
        return Device.from_row(rows[0]["device"]) if rows else None


@strawberry.type(description="A behavioural cluster of one clustering run.")
class Cluster:
    id: strawberry.ID = strawberry.field(description="runId:clusterId")
    cluster_id: int = strawberry.field(description="Stable across runs while the cluster persists.")
    run_id: str
    label: str
    size: int
    confidence: float
    separation: float
    reasons: list[ClusterReason]
    recommendation: SgtRecommendation

    @classmethod
    def from_node(cls, k: dict[str, Any]) -> Cluster:
        disagreeing = json.loads(k["rec_disagreeing"])
        return cls(
            id=strawberry.ID(k["uid"]), cluster_id=int(k["cluster_id"]), run_id=k["run_id"], label=k["label"],
            size=int(k["size"]), confidence=float(k["confidence"]), separation=float(k["separation"]),
            reasons=[ClusterReason(**r) for r in json.loads(k["reasons"])],
            recommendation=SgtRecommendation(
                sgt=k.get("rec_sgt"), sgt_name=k["rec_sgt_name"], is_new=bool(k["rec_is_new"]),
                confidence=float(k["rec_confidence"]), disagreeing_count=len(disagreeing),
                disagreeing=disagreeing[:100],
            ),
        )  # fmt: skip

    @strawberry.field(description="Members in uid order; pass the last uid of a page as `after`.")
    async def members(self, info: Info, first: int = 100, after: str | None = None) -> list[ClusterMember]:
        cap = info.context.settings.graphql_page_cap
        if not 1 <= first <= cap:
            raise GraphQLError(f"first must be between 1 and {cap}, got {first}")
        rows = await info.context.read(
            "query/cluster_members", {"uid": str(self.id), "after": after or "", "limit": first}
        )
        return [ClusterMember(uid=r["uid"], probability=float(r["probability"]), sgt=r["sgt"]) for r in rows]


@strawberry.type
class ClusteringRun:
    run_id: str
    created_at: Long
    devices: int
    cluster_count: int
    noise_count: int
    parameters: str = strawberry.field(description="The parameters as JSON.")

    @classmethod
    def from_node(cls, r: dict[str, Any]) -> ClusteringRun:
        return cls(
            run_id=r["run_id"], created_at=Long(int(r["created_ms"])), devices=int(r["devices"]),
            cluster_count=int(r["clusters"]), noise_count=int(r["noise"]), parameters=r["params"],
        )  # fmt: skip

    @strawberry.field
    async def clusters(self, info: Info) -> list[Cluster]:
        rows = await info.context.read("query/clusters_of_run", {"run_id": self.run_id})
        return [Cluster.from_node(r["cluster"]) for r in rows]


@strawberry.input(description="Clustering parameters; omitted ones take the defaults.")
class ClusteringParamsInput:
    min_cluster_size: int | None = None
    min_samples: int | None = None
    identity_weight: float | None = None
    seed: int | None = None
    since: dt.date | None = strawberry.field(default=None, description="First UTC day of flows to use.")
    until: dt.date | None = strawberry.field(default=None, description="Last UTC day of flows to use.")


@strawberry.type
class ClusteringQuery:
    @strawberry.field(description="A background job by id.")
    async def job(self, info: Info, id: strawberry.ID) -> Job | None:
        j = info.context.jobs.get(str(id))
        return Job.from_job(j) if j else None

    @strawberry.field(description="The newest clustering runs first.")
    async def clustering_runs(self, info: Info, limit: int = 10) -> list[ClusteringRun]:
        rows = await info.context.read("query/clustering_runs", {"limit": max(1, min(limit, 100))})
        return [ClusteringRun.from_node(r["run"]) for r in rows]

    @strawberry.field(description="The clusters of a run (the newest run when runId is omitted).")
    async def clusters(self, info: Info, run_id: str | None = None) -> list[Cluster]:
        if run_id is None:
            latest = await info.context.read("query/clustering_runs", {"limit": 1})
            if not latest:
                return []
            run_id = latest[0]["run"]["run_id"]
        rows = await info.context.read("query/clusters_of_run", {"run_id": run_id})
        return [Cluster.from_node(r["cluster"]) for r in rows]

    @strawberry.field(description="One cluster by id (runId:clusterId).")
    async def cluster(self, info: Info, id: strawberry.ID) -> Cluster | None:
        rows = await info.context.read("query/cluster_by_uid", {"uid": str(id)})
        return Cluster.from_node(rows[0]["cluster"]) if rows else None


@strawberry.type
class ClusteringMutation:
    @strawberry.mutation(description="Start behavioural clustering as a background job (admin token).")
    async def run_clustering(self, info: Info, params: ClusteringParamsInput | None = None) -> Job:
        from clarion.jobs.clustering import start_clustering_job

        principal = info.context.principal
        if principal is None or principal.role is not Role.ADMIN:
            raise GraphQLError("runClustering needs an admin token")
        p = params or ClusteringParamsInput()
        given = {k: getattr(p, k) for k in ("min_cluster_size", "min_samples", "identity_weight", "seed")}
        try:
            cp = ClusteringParams(**{k: v for k, v in given.items() if v is not None})
            lo, hi = day_range(p.since, p.until)
        except (ParamsError, ValueError, TypeError) as e:
            raise GraphQLError(str(e)) from None
        job = start_clustering_job(info.context.jobs, info.context.store, cp, lo, hi)
        return Job.from_job(job)
