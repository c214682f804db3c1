"""EdgeGraph v1: normalisation, digest and the semantic checks a schema cannot express."""

from __future__ import annotations

import msgspec
import pytest

from clarion_edge import wire
from tests.helpers import mac, small_graph


@pytest.mark.parametrize(
    "spelling", ["AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", "aabbccddeeff", "Aa:bB:cc:DD:ee:Ff"]
)
def test_normalise_mac_accepts_common_spellings(spelling: str) -> None:
    assert wire.normalise_mac(spelling) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize(
    "bad", ["aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "zz:bb:cc:dd:ee:ff", "", "aa:bb:cc:dd:ee:ff   "]
)
def test_normalise_mac_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="MAC"):
        wire.normalise_mac(bad)


def test_digest_is_stable_and_content_sensitive() -> None:
    a, b = small_graph(), small_graph()
    assert a.digest == b.digest
    assert a.digest is not None
    assert a.digest.startswith("sha256:")
    assert small_graph(bytes_=1001).digest != a.digest
    assert wire.decode(wire.encode(a)) == a


def test_roundtrip_of_unsealed_graph_has_no_digest() -> None:
    g = msgspec.structs.replace(small_graph(), digest=None)
    assert wire.decode(wire.encode(g)).digest is None


def _with(g: wire.EdgeGraph, **changes: object) -> wire.EdgeGraph:
    return msgspec.structs.replace(g, digest=None, **changes)


def test_duplicate_endpoint_is_rejected() -> None:
    g = small_graph()
    bad = _with(g, nodes=[*g.nodes, wire.Device(mac=mac(1))])
    with pytest.raises(wire.WireError, match="listed twice") as e:
        wire.validate(bad)
    assert e.value.path == f"$.nodes[{len(g.nodes)}]"


def test_non_canonical_ipv6_is_rejected_with_expected_form() -> None:
    g = small_graph()
    bad = _with(g, nodes=[*g.nodes, wire.IpEndpoint(ip="2001:DB8::1")])
    with pytest.raises(wire.WireError, match="'2001:db8::1'"):
        wire.validate(bad)


def test_window_longer_than_a_day_is_rejected() -> None:
    g = small_graph()
    bad = _with(g, window=wire.Window(start=0, end=wire.DAY_MS + 1))
    with pytest.raises(wire.WireError, match="at most one day"):
        wire.validate(bad)


def test_connected_to_needs_a_device_of_the_batch() -> None:
    g = small_graph()
    bad = _with(g, edges=[*g.edges, wire.ConnectedTo(device=mac(99))])
    with pytest.raises(wire.WireError, match="not a Device"):
        wire.validate(bad)


def test_unknown_fields_are_refused() -> None:
    raw = wire.encode(msgspec.structs.replace(small_graph(), digest=None)).replace(
        b'"seq":1', b'"seq":1,"role":"printer"'
    )
    with pytest.raises(msgspec.ValidationError, match="unknown field `role`"):
        wire.decode(raw)
