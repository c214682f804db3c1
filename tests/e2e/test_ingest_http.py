"""POST /api/v1/graphs through a real uvicorn server: exactly once, and bad input rejected whole."""

from __future__ import annotations

import json

import pytest

from clarion_edge import wire
from tests.e2e.conftest import ADMIN_TOKEN, OTHER_AGENT_TOKEN, READER_TOKEN, Api
from tests.helpers import mac, small_graph

pytestmark = pytest.mark.e2e

STATS = "{ stats { devices switches flowEdges bytes packets flows } }"


def body_of(g: wire.EdgeGraph) -> dict:  # type: ignore[type-arg]
    return json.loads(wire.encode(g))  # type: ignore[no-any-return]


def stats(api: Api) -> dict:  # type: ignore[type-arg]
    return api.graphql(STATS)["data"]["stats"]  # type: ignore[no-any-return]


def test_post_three_times_counts_once(api: Api) -> None:
    g = small_graph()
    with api.client() as c:
        answers = [c.post("/api/v1/graphs", content=wire.encode(g)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert stats(api) == {"devices": 4, "switches": 1, "flowEdges": 3, "bytes": 6300, "packets": 33, "flows": 6}


def test_conflicting_replay_is_409_and_writes_nothing(api: Api) -> None:
    with api.client() as c:
        assert c.post("/api/v1/graphs", content=wire.encode(small_graph(seq=5))).status_code == 200
        before = stats(api)
        r = c.post("/api/v1/graphs", content=wire.encode(small_graph(seq=5, bytes_=1)))
    assert r.status_code == 409
    assert r.json()["detail"]["path"] == "$.seq"
    assert "seq 5" in r.json()["detail"]["error"]
    assert stats(api) == before


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda b: b["nodes"][0].__setitem__("mac", "02:00:00:00:00:zz"), "$.nodes[0].mac", "matching regex"),
        (lambda b: b["edges"][0].__setitem__("bytes", -5), "$.edges[0].bytes", ">= 0"),
        (lambda b: b["edges"][0].__setitem__("type", "TELEPORTS_TO"), "$.edges[0].type", "TELEPORTS_TO"),
        (lambda b: b["edges"][0].__setitem__("src", "02:00:00:00:09:09"), "$.edges[0].src", "not a Device"),
        (lambda b: b.__setitem__("schema_version", 2), "$.schema_version", "Invalid enum value 2"),
        (lambda b: b["window"].__setitem__("end", 0), "$.window.end", "before window.start"),
        (lambda b: b["nodes"][0].__setitem__("ips", ["10.1.0.001"]), "$.nodes[0].ips[0]", "IPv4 or IPv6"),
    ],
    ids=["invalid-mac", "negative-counter", "unknown-edge-type", "dangling-edge", "schema-version", "window", "ip"],
)
def test_invalid_bodies_get_422_naming_the_field_and_write_nothing(api: Api, mutate, path, words) -> None:  # type: ignore[no-untyped-def]
    body = body_of(small_graph())
    body["digest"] = None
    mutate(body)
    with api.client() as c:
        r = c.post("/api/v1/graphs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["path"] == path
    assert words in r.json()["detail"]["error"]
    assert stats(api)["devices"] == 0


def test_wrong_digest_is_422(api: Api) -> None:
    body = body_of(small_graph())
    body["edges"][0]["bytes"] += 1
    with api.client() as c:
        r = c.post("/api/v1/graphs", json=body)
    assert (r.status_code, r.json()["detail"]["path"]) == (422, "$.digest")


def test_malformed_json_is_422_with_byte_offset(api: Api) -> None:
    with api.client() as c:
        r = c.post("/api/v1/graphs", content=b'{"schema_version": 1,, }')
    assert r.status_code == 422
    assert "byte 21" in r.json()["detail"]["error"]


def test_too_many_edges_is_413_and_writes_nothing(api: Api) -> None:
    g = small_graph()
    flows = [e for e in g.edges if isinstance(e, wire.FlowsTo)]
    many = wire.EdgeGraph(
        schema_version=1, agent_id=g.agent_id, seq=9, switch=g.switch, window=g.window, nodes=g.nodes,
        edges=[flows[0]] * 1001,
    )  # fmt: skip
    with api.client() as c:
        r = c.post("/api/v1/graphs", content=wire.encode(many))
    assert r.status_code == 413
    assert "1001 edges" in r.json()["detail"]["error"]
    assert stats(api)["flowEdges"] == 0


def test_oversized_body_is_413_before_parsing(api: Api) -> None:
    with api.client() as c:
        r = c.post("/api/v1/graphs", content=b" " * 2_000_001)
    assert r.status_code == 413
    assert r.json()["detail"]["limit_bytes"] == 2_000_000


def test_tokens(api: Api) -> None:
    body = wire.encode(small_graph())
    with api.client(token=None) as c:
        r = c.post("/api/v1/graphs", content=body)
    assert r.status_code == 401
    assert "Authorization" in r.json()["detail"]
    with api.client(token="x" * 30) as c:
        assert c.post("/api/v1/graphs", content=body).status_code == 401
    with api.client(token=OTHER_AGENT_TOKEN) as c:
        r = c.post("/api/v1/graphs", content=body)
    assert r.status_code == 403
    assert "edge-sw2" in r.json()["detail"]["error"]
    with api.client(token=READER_TOKEN) as c:
        assert c.post("/api/v1/graphs", content=body).status_code == 403
    with api.client(token=ADMIN_TOKEN) as c:
        assert c.post("/api/v1/graphs", content=body).status_code == 200
    with api.client(token=None) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.post("/graphql", json={"query": STATS}).status_code == 401
    with api.client() as c:  # an agent token cannot read the graph
        assert c.post("/graphql", json={"query": STATS}).status_code == 403


def test_metrics_count_outcomes(api: Api) -> None:
    with api.client() as c:
        c.post("/api/v1/graphs", content=wire.encode(small_graph()))
        c.post("/api/v1/graphs", content=wire.encode(small_graph()))
        c.post("/api/v1/graphs", content=b"{}")
        text = c.get("/metrics").text
    assert 'clarion_batches_total{outcome="applied"} 1.0' in text
    assert 'clarion_batches_total{outcome="duplicate"} 1.0' in text
    assert 'clarion_batches_total{outcome="invalid"} 1.0' in text
    assert "clarion_flow_edges_merged_total 3.0" in text


def test_device_query_shows_switch_port_and_peers_by_service(api: Api) -> None:
    with api.client() as c:
        c.post("/api/v1/graphs", content=wire.encode(small_graph()))
    q = """query($mac: String!) { device(mac: $mac) { uid sgt interface vlan switch { switchId name }
            outbound { service peers bytes samplePeers } inbound { service peers bytes } } }"""
    d = api.graphql(q, {"mac": mac(1).upper().replace(":", "-")})["data"]["device"]
    assert d["uid"] == mac(1)
    assert (d["sgt"], d["interface"], d["vlan"]) == (4, "Gi1/0/1", 10)
    assert d["switch"] == {"switchId": "sw1", "name": "access-sw1"}
    assert d["outbound"] == [
        {"service": "tcp/443", "peers": 1, "bytes": 5000, "samplePeers": ["198.51.100.7"]},
        {"service": "tcp/9100", "peers": 1, "bytes": 1000, "samplePeers": [mac(2)]},
    ]
    assert d["inbound"] == []
    printer = api.graphql(q, {"mac": mac(2)})["data"]["device"]
    assert printer["inbound"] == [
        {"service": "tcp/9100", "peers": 1, "bytes": 1000},
        {"service": "udp/161", "peers": 1, "bytes": 300},
    ]
    bad = api.graphql(q, {"mac": "not-a-mac"})
    assert "not a MAC address" in bad["errors"][0]["message"]


def test_devices_connection_pages_in_stable_order(api: Api) -> None:
    with api.client() as c:
        c.post("/api/v1/graphs", content=wire.encode(small_graph()))
    q = """query($after: String, $f: DeviceFilter) { devices(first: 2, after: $after, filter: $f) {
            edges { cursor node { uid } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = api.graphql(q, {"after": after})["data"]["devices"]
        seen += [e["node"]["uid"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted([mac(1), mac(2), mac(3), "198.51.100.7"])
    local = api.graphql(q, {"f": {"kind": "IP"}})["data"]["devices"]["edges"]
    assert [e["node"]["uid"] for e in local] == ["198.51.100.7"]
    assert "invalid cursor" in api.graphql(q, {"after": "bogus"})["errors"][0]["message"]


def test_policy_matrix_cells(api: Api) -> None:
    with api.client() as c:
        c.post("/api/v1/graphs", content=wire.encode(small_graph()))
    q = "{ policyMatrix { sgts { value name } cells { srcSgt dstSgt bytes flows serviceCount services { service } } } }"
    m = api.graphql(q)["data"]["policyMatrix"]
    assert [s["value"] for s in m["sgts"]] == [0, 4, 10]
    cells = {(c["srcSgt"], c["dstSgt"]): c for c in m["cells"]}
    assert cells[(4, 10)]["bytes"] == 1000
    assert cells[(4, 10)]["services"] == [{"service": "tcp/9100"}]
    assert cells[(4, 0)]["bytes"] == 5000
    assert cells[(0, 10)] == {"srcSgt": 0, "dstSgt": 10, "bytes": 300, "flows": 3, "serviceCount": 1,
                              "services": [{"service": "udp/161"}]}  # fmt: skip
    empty = api.graphql('{ policyMatrix(since: "2030-01-01") { cells { bytes } } }')["data"]["policyMatrix"]
    assert empty["cells"] == []


def test_graphql_depth_and_alias_limits(api: Api) -> None:
    aliases = " ".join(f"a{i}: stats {{ devices }}" for i in range(40))
    r = api.graphql("{ " + aliases + " }")
    assert "aliases" in r["errors"][0]["message"].lower()


def test_store_away_is_503_and_nothing_is_lost(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from clarion.store.port import StoreUnavailableError

    def away(*_: object, **__: object) -> None:
        raise StoreUnavailableError("FalkorDB /tmp/x.sock (merge/batch): Connection refused")

    body = wire.encode(small_graph())
    with monkeypatch.context() as m:
        m.setattr(api.store, "write", away)
        with api.client() as c:
            r = c.post("/api/v1/graphs", content=body)
        assert r.status_code == 503
        assert "nothing was written; retry later" in r.json()["detail"]["error"]
    with api.client() as c:  # the agent's retry after the store is back applies it once
        assert c.post("/api/v1/graphs", content=body).json()["applied"] is True
