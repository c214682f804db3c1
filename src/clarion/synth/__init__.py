"""Synthetic campus generator: devices, users, SGTs and flows, deterministic by seed.

Used by the demo, the tests, the benchmarks and the clustering work. Each device's true role is
kept for quality checks and never reaches an EdgeGraph.
"""

from clarion.synth.campus import Campus, generate_campus, write_edge_graphs
from clarion.synth.model import (
    DEFAULT_START_MS,
    FLOW_ROW_DTYPE,
    CampusSpec,
    SynthDevice,
    SynthGroup,
    SynthSession,
    SynthSgt,
    SynthSwitch,
    SynthUser,
)

__all__ = [
    "DEFAULT_START_MS",
    "FLOW_ROW_DTYPE",
    "Campus",
    "CampusSpec",
    "SynthDevice",
    "SynthGroup",
    "SynthSession",
    "SynthSgt",
    "SynthSwitch",
    "SynthUser",
    "generate_campus",
    "write_edge_graphs",
]
