"""The synthetic campus: generate it from a spec, query its ground truth, export its EdgeGraphs.

Ground truth (each device's role, the SGT its role calls for) lives only here, for quality
checks; nothing that reaches the server carries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clarion.synth import graphs
from clarion.synth.flows import generate_flows, make_remote_hosts
from clarion.synth.model import (
    CampusSpec,
    SynthDevice,
    SynthGroup,
    SynthSession,
    SynthSgt,
    SynthSwitch,
    SynthUser,
)
from clarion.synth.roles import ROLE_NAMES, SGTS
from clarion.synth.topology import build_layout
from clarion_edge import wire


@dataclass
class Campus:
    """Everything generated from one spec; treat it as read-only (tests share one instance)."""

    spec: CampusSpec
    switches: list[SynthSwitch]
    devices: list[SynthDevice]
    roles: list[str]
    flows: np.ndarray
    remote_hosts: list[str]
    users: list[SynthUser]
    ad_groups: list[SynthGroup]
    #: 802.1X sessions of devices with a user.
    sessions: list[SynthSession]
    sgts: list[SynthSgt]
    #: Per device: index of its switch in ``switches``, index of its role in ``roles``, expected SGT.
    switch_index: np.ndarray
    role_index: np.ndarray
    expected_sgt_values: np.ndarray
    #: Per device: index of the role of a second job it does (a DC that also serves DHCP), or -1.
    second_role_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    #: MAB sessions (user name = the MAC) of access devices without a user: phones, printers, cameras ...
    mab_sessions: list[SynthSession] = field(default_factory=list)
    #: Ground truth of anomalies: indexes of the devices that sweep other hosts' low ports.
    scanners: list[int] = field(default_factory=list)
    _by_key: dict[str, int] = field(default_factory=dict, repr=False)

    def device(self, mac_or_ip: str) -> SynthDevice:
        """The device with this MAC (any common spelling) or IP; KeyError naming the value if none."""
        if not self._by_key:
            for d in self.devices:
                self._by_key[d.ip] = d.index
                if d.mac is not None:
                    self._by_key[d.mac] = d.index
        key = mac_or_ip.strip()
        try:
            key = wire.normalise_mac(key)
        except ValueError:
            try:
                key = wire.normalise_ip(key)
            except ValueError:
                raise KeyError(f"{mac_or_ip!r} is neither a MAC nor an IP address") from None
        if key not in self._by_key:
            raise KeyError(f"no device of this campus has MAC or IP {key!r}")
        return self.devices[self._by_key[key]]

    def true_role(self, mac_or_ip: str) -> str:
        """The role the device was generated with (ground truth for clustering checks)."""
        return self.device(mac_or_ip).role

    def second_role(self, mac_or_ip: str) -> str | None:
        """The role of a second job the device also does (ground truth behind some confusions)."""
        k = int(self.second_role_index[self.device(mac_or_ip).index])
        return self.roles[k] if k >= 0 else None

    def expected_sgt(self, mac_or_ip: str) -> int:
        """The SGT its role and user call for (its current ``sgt`` may be missing or wrong)."""
        return int(self.expected_sgt_values[self.device(mac_or_ip).index])

    def edge_graphs(
        self, agent_id_prefix: str = "edge-", start_seq: int = 1, max_edges: int = graphs.MAX_EDGES
    ) -> Iterator[wire.EdgeGraph]:
        """One sealed EdgeGraph per switch per window (more when a window passes ``max_edges``)."""
        return graphs.edge_graphs(self, agent_id_prefix, start_seq, max_edges)

    def stats(self) -> dict[str, int]:
        f = self.flows
        return {
            "devices": len(self.devices),
            "switches": len(self.switches),
            "remote_hosts": len(self.remote_hosts),
            "users": len(self.users),
            "sessions": len(self.sessions),
            "mab_sessions": len(self.mab_sessions),
            "flow_rows": len(f),
            "bytes": int(f["bytes"].sum(dtype=np.uint64)),
            "packets": int(f["packets"].sum(dtype=np.uint64)),
            "flows": int(f["flows"].sum(dtype=np.uint64)),
            "ip_only_devices": sum(d.mac is None for d in self.devices),
            "devices_without_sgt": sum(d.sgt is None for d in self.devices),
        }


def generate_campus(spec: CampusSpec | None = None) -> Campus:
    """Build the whole campus; the same spec always gives the same campus, bit for bit."""
    spec = spec or CampusSpec()
    seeds = np.random.SeedSequence(spec.seed).spawn(3)
    layout_rng, remote_rng, flow_rng = (np.random.default_rng(s) for s in seeds)
    layout = build_layout(spec, layout_rng)
    remote = make_remote_hosts(spec.remote_hosts, remote_rng)
    flows, scanners = generate_flows(spec, layout.role_idx, layout.second_idx, layout.db_port, len(remote), flow_rng)
    return Campus(
        spec=spec,
        switches=layout.switches,
        devices=layout.devices,
        roles=list(ROLE_NAMES),
        flows=flows,
        remote_hosts=remote,
        users=layout.users,
        ad_groups=layout.groups,
        sessions=layout.sessions,
        mab_sessions=layout.mab_sessions,
        sgts=list(SGTS),
        switch_index=layout.switch_idx,
        role_index=layout.role_idx,
        expected_sgt_values=layout.expected_sgt,
        second_role_index=layout.second_idx,
        scanners=scanners.tolist(),
    )


def write_edge_graphs(
    campus: Campus, out_dir: str | Path, agent_id_prefix: str = "edge-", start_seq: int = 1
) -> list[Path]:
    """Write every EdgeGraph of the campus as JSON, one file per graph; return the paths in send order."""
    return graphs.write_edge_graphs(campus, out_dir, agent_id_prefix, start_seq)


__all__ = ["Campus", "generate_campus", "write_edge_graphs"]
