"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry
    batches: Counter
    flow_edges: Counter
    merge_seconds: Histogram
    graphql_requests: Counter

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            batches=Counter("clarion_batches", "EdgeGraph batches received, by outcome", ["outcome"], registry=reg),
            flow_edges=Counter("clarion_flow_edges_merged", "FLOWS_TO edges in applied batches", registry=reg),
            merge_seconds=Histogram(
                "clarion_merge_seconds",
                "time to merge one batch into the store",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=reg,
            ),
            graphql_requests=Counter("clarion_graphql_requests", "GraphQL requests", registry=reg),
        )
