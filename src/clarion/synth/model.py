"""Plain records of a synthetic campus: what the generator returns and tests inspect.

They are frozen dataclasses so a campus can be shared between tests without one test
changing what the next one sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
#: 2026-11-02T00:00:00Z, a Monday: a fixed default so generated data never depends on the clock.
DEFAULT_START_MS = 1_793_577_600_000

#: One row of ``Campus.flows``. ``src``/``dst`` are device indexes, or ``-1 - k`` for remote host k.
#: ``port`` is the service (server-side) port; ``flows`` counts the flows the row aggregates.
FLOW_ROW_DTYPE = np.dtype(
    [
        ("src", "i4"),
        ("dst", "i4"),
        ("protocol", "u1"),
        ("port", "u2"),
        ("bytes", "u8"),
        ("packets", "u8"),
        ("flows", "u4"),
        ("first_ms", "i8"),
        ("last_ms", "i8"),
    ]
)

# Limits of a campus: large enough for the scale benchmarks, small enough to fail fast on typos.
MAX_DEVICES = 250_000
MAX_SWITCHES = 2_000
MAX_REMOTE_HOSTS = 100_000
MAX_DAYS = 31
MAX_FLOWS_PER_DEVICE_PER_DAY = 2_000
MAX_ROWS = 20_000_000  # about 5 GB of peak memory while generating
MIN_WINDOW_MS = 60_000


@dataclass(frozen=True)
class CampusSpec:
    """What to generate; the same spec (seed included) always gives the same campus."""

    seed: int = 7
    switches: int = 8
    devices: int = 2_000
    remote_hosts: int = 200
    days: int = 1
    start_ms: int = DEFAULT_START_MS
    window_ms: int = 3_600_000
    flows_per_device_per_day: float = 40.0
    #: Share of flow rows that are random extra traffic (scans, odd ports, misconfigurations).
    noise: float = 0.03
    #: Share of client devices whose flows never carry a MAC (seen behind a routed hop).
    ip_only_share: float = 0.02
    #: Shares of devices whose current SGT is missing or wrong (not the one their role should have).
    missing_sgt_share: float = 0.06
    wrong_sgt_share: float = 0.05
    #: Share of devices that are nearly silent (a handful of flows a day).
    quiet_share: float = 0.04
    #: Chance that a device's MAC is missing in one window (its flows then name it by IP only),
    #: so a server has to join an IP-only endpoint to the device it already knows. Off by default.
    mac_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("switches", self.switches, 1, MAX_SWITCHES)
        _check_int("devices", self.devices, 1, MAX_DEVICES)
        _check_int("remote_hosts", self.remote_hosts, 1, MAX_REMOTE_HOSTS)
        _check_int("days", self.days, 1, MAX_DAYS)
        _check_int("start_ms", self.start_ms, 0, 32_503_680_000_000 - MAX_DAYS * DAY_MS)
        _check_int("window_ms", self.window_ms, MIN_WINDOW_MS, DAY_MS)
        if not (0 < self.flows_per_device_per_day <= MAX_FLOWS_PER_DEVICE_PER_DAY):
            raise ValueError(
                f"CampusSpec.flows_per_device_per_day={self.flows_per_device_per_day!r} "
                f"is out of range (accepted: > 0 and <= {MAX_FLOWS_PER_DEVICE_PER_DAY})"
            )
        for name in ("noise", "ip_only_share", "missing_sgt_share", "wrong_sgt_share", "quiet_share", "mac_dropout"):
            value = getattr(self, name)
            if not (0.0 <= value <= 0.5):
                raise ValueError(f"CampusSpec.{name}={value!r} is out of range (accepted: 0.0 to 0.5)")
        if self.total_rows > MAX_ROWS:
            raise ValueError(
                f"CampusSpec asks for {self.total_rows} flow rows (devices x flows_per_device_per_day x days); "
                f"at most {MAX_ROWS} are accepted"
            )

    @property
    def total_rows(self) -> int:
        """Number of rows ``Campus.flows`` will hold."""
        return round(self.devices * self.flows_per_device_per_day * self.days)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not (low <= value <= high):
        raise ValueError(f"CampusSpec.{name}={value!r} is out of range (accepted: an integer from {low} to {high})")


@dataclass(frozen=True)
class SynthSwitch:
    switch_id: str
    name: str
    mgmt_ip: str
    #: Whether this switch's flow export carries SGTs (older line cards do not).
    exports_sgt: bool = True
    #: Data-centre switches host the servers; access switches host the clients.
    datacenter: bool = False


@dataclass(frozen=True)
class SynthDevice:
    index: int
    mac: str | None
    ip: str
    role: str
    switch_id: str
    interface: str
    vlan: int
    sgt: int | None
    user: str | None
    profile: str

    @property
    def key(self) -> str:
        """How the device is named in EdgeGraphs: its MAC, or its IP when the MAC is never seen."""
        return self.mac if self.mac is not None else self.ip


@dataclass(frozen=True)
class SynthSgt:
    value: int
    name: str
    description: str


@dataclass(frozen=True)
class SynthUser:
    username: str
    display_name: str
    sid: str
    upn: str
    dn: str
    department: str
    #: Names of the groups the user is a direct member of (nesting is on ``SynthGroup.member_of``).
    groups: tuple[str, ...]


@dataclass(frozen=True)
class SynthGroup:
    name: str
    sid: str
    dn: str
    #: Names of the groups this group is a direct member of (e.g. Team-A -> Engineering).
    member_of: tuple[str, ...]


@dataclass(frozen=True)
class SynthSession:
    """An ISE-like session: who is on which device, where, with which SGT."""

    mac: str
    ip: str
    user: str
    sgt: int | None
    switch_id: str
    interface: str
    start_ms: int
    profile: str = ""
