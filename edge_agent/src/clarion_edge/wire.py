"""EdgeGraph v1: the one definition of what an edge agent sends the server.

The server imports these types from here, so agent and server cannot drift apart.
msgspec decodes and validates in one pass and names the failing field path
(``$.edges[3].bytes``), which the server returns verbatim in its 422 answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1
DAY_MS = 86_400_000

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_MAC_STRIP = re.compile(r"[^0-9a-fA-F]")

# A window is at most one day long; counters fit in a signed 64-bit integer.
U64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=32_503_680_000_000)]  # up to year 3000
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Protocol = Annotated[int, msgspec.Meta(ge=0, le=255)]
Vlan = Annotated[int, msgspec.Meta(ge=0, le=4095)]
SgtValue = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")]
Text = Annotated[str, msgspec.Meta(max_length=256)]
MacStr = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]
IpStr = Annotated[str, msgspec.Meta(min_length=2, max_length=45)]
Digest = Annotated[str, msgspec.Meta(pattern=r"^sha256:[0-9a-f]{64}$")]


class WireError(ValueError):
    """A semantically invalid EdgeGraph; ``path`` names the offending field."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{message} - at `{path}`")
        self.path = path
        self.detail = message


def normalise_mac(value: str) -> str:
    """Return ``aa:bb:cc:dd:ee:ff`` for any common MAC spelling, or raise ValueError."""
    hexdigits = _MAC_STRIP.sub("", value)
    if len(hexdigits) != 12 or len(value) > 17:
        raise ValueError(f"not a MAC address: {value!r} (expected 6 octets, e.g. aa:bb:cc:dd:ee:ff)")
    h = hexdigits.lower()
    return ":".join(h[i : i + 2] for i in range(0, 12, 2))


def normalise_ip(value: str) -> str:
    """Return the canonical text of an IPv4/IPv6 address, or raise ValueError."""
    return str(ipaddress.ip_address(value))


class SwitchInfo(msgspec.Struct, forbid_unknown_fields=True):
    switch_id: Ident
    name: Text | None = None
    mgmt_ip: IpStr | None = None


class Window(msgspec.Struct, forbid_unknown_fields=True):
    start: EpochMs
    end: EpochMs


class Device(msgspec.Struct, tag="Device", forbid_unknown_fields=True):
    """An endpoint whose MAC the switch reported; its key is the normalised MAC."""

    mac: MacStr
    ips: Annotated[list[IpStr], msgspec.Meta(max_length=16)] = []
    sgt: SgtValue | None = None
    local: bool = True

    @property
    def key(self) -> str:
        return self.mac


class IpEndpoint(msgspec.Struct, tag="IpEndpoint", forbid_unknown_fields=True):
    """An endpoint known only by IP (remote, or local before its MAC is learnt)."""

    ip: IpStr
    sgt: SgtValue | None = None
    local: bool = False

    @property
    def key(self) -> str:
        return self.ip


class Service(msgspec.Struct, tag="Service", forbid_unknown_fields=True):
    protocol: Protocol
    port: Port


Node = Device | IpEndpoint | Service


class FlowsTo(msgspec.Struct, tag="FLOWS_TO", forbid_unknown_fields=True):
    """Traffic from ``src`` (client side) to ``dst`` on the service ``protocol``/``port``."""

    src: Annotated[str, msgspec.Meta(min_length=2, max_length=45)]
    dst: Annotated[str, msgspec.Meta(min_length=2, max_length=45)]
    protocol: Protocol
    port: Port
    bytes: U64
    packets: U64
    flows: U64
    first_seen: EpochMs
    last_seen: EpochMs


class ConnectedTo(msgspec.Struct, tag="CONNECTED_TO", forbid_unknown_fields=True):
    """A device seen behind ``interface`` (and ``vlan``) of this batch's switch."""

    device: MacStr
    interface: Text | None = None
    vlan: Vlan | None = None


Edge = FlowsTo | ConnectedTo


class EdgeGraph(msgspec.Struct, forbid_unknown_fields=True):
    """One switch, one window: the unit an agent sends and the server applies exactly once."""

    schema_version: Literal[1]
    agent_id: Ident
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    switch: SwitchInfo
    window: Window
    nodes: list[Node]
    edges: list[Edge]
    digest: Digest | None = None

    def content_digest(self) -> str:
        """sha256 over the canonical encoding of everything but the digest itself."""
        body = msgspec.structs.replace(self, digest=None)
        return "sha256:" + hashlib.sha256(_CANON.encode(body)).hexdigest()

    def sealed(self) -> EdgeGraph:
        """Return a copy carrying its content digest (what an agent sends)."""
        return msgspec.structs.replace(self, digest=self.content_digest())


_CANON = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(EdgeGraph)


def decode(data: bytes) -> EdgeGraph:
    """Parse and fully validate an EdgeGraph; raise msgspec.ValidationError or WireError."""
    graph = _DECODER.decode(data)
    validate(graph)
    return graph


def encode(graph: EdgeGraph) -> bytes:
    return msgspec.json.encode(graph)


def validate(g: EdgeGraph) -> None:
    """Checks a schema cannot express: canonical MAC/IP text, references, time order, digest."""
    if g.window.end < g.window.start:
        raise WireError("window.end is before window.start", "$.window.end")
    if g.window.end - g.window.start > DAY_MS:
        raise WireError("a window may span at most one day (86400000 ms)", "$.window.end")
    if g.switch.mgmt_ip is not None:
        _check_ip(g.switch.mgmt_ip, "$.switch.mgmt_ip")
    endpoints: set[str] = set()
    for i, node in enumerate(g.nodes):
        if isinstance(node, Device):
            if not _MAC_RE.match(node.mac):
                raise WireError(
                    f"MAC {node.mac!r} is not normalised (lower-case aa:bb:cc:dd:ee:ff)", f"$.nodes[{i}].mac"
                )
            for j, ip in enumerate(node.ips):
                _check_ip(ip, f"$.nodes[{i}].ips[{j}]")
        elif isinstance(node, IpEndpoint):
            _check_ip(node.ip, f"$.nodes[{i}].ip")
        else:
            continue
        if node.key in endpoints:
            raise WireError(f"endpoint {node.key!r} is listed twice", f"$.nodes[{i}]")
        endpoints.add(node.key)
    for i, edge in enumerate(g.edges):
        if isinstance(edge, FlowsTo):
            if edge.src not in endpoints:
                raise WireError(f"src {edge.src!r} is not a Device or IpEndpoint of this batch", f"$.edges[{i}].src")
            if edge.dst not in endpoints:
                raise WireError(f"dst {edge.dst!r} is not a Device or IpEndpoint of this batch", f"$.edges[{i}].dst")
            if edge.last_seen < edge.first_seen:
                raise WireError("last_seen is before first_seen", f"$.edges[{i}].last_seen")
        elif edge.device not in endpoints:
            raise WireError(f"device {edge.device!r} is not a Device of this batch", f"$.edges[{i}].device")
    if g.digest is not None and g.digest != g.content_digest():
        raise WireError("digest does not match the content (expected sha256 of the canonical body)", "$.digest")


def _check_ip(value: str, path: str) -> None:
    try:
        canon = normalise_ip(value)
    except ValueError:
        raise WireError(f"{value!r} is not an IPv4 or IPv6 address", path) from None
    if canon != value:
        raise WireError(f"IP {value!r} is not in canonical form (expected {canon!r})", path)


def json_schema() -> dict[str, object]:
    """The JSON Schema of EdgeGraph v1, exported to docs/ and checked for staleness."""
    return msgspec.json.schema(EdgeGraph)
