"""POST /api/v1/identity through a real uvicorn server, then GraphQL: users, AD groups, SGT names, time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from clarion.api.app import create_app
from clarion.identity import merge_directory
from clarion.server import BackgroundServer
from clarion.sources.model import ADGroup, ADUser, DirectorySnapshot, Session
from clarion.sources.pxgrid.sink import session_to_json
from clarion.store.falkordb_store import FalkorDBStore
from clarion.store.port import StoreUnavailableError
from clarion_edge import wire
from tests.e2e.conftest import ADMIN_TOKEN, AGENT_TOKEN, READER_TOKEN, Api, make_settings
from tests.helpers import T0, small_graph

pytestmark = pytest.mark.e2e

DOM = "S-1-5-21-1-2-3"
MAC_A, MAC_B, MAC_C = "02:00:00:00:0a:01", "02:00:00:00:0a:02", "02:00:00:00:0a:03"

IDENTITY = """query($mac: String!) { device(mac: $mac) { uid identity {
  user { username displayName source since until }
  adGroups { sid name via depth }
  sgt { value name source since }
  endpointProfile profileSource sessionState
  ports { switchId interface vlan source }
  ipBindings { ip since until source }
} } }"""


def sessions() -> list[Session]:
    return [
        Session(mac=MAC_A, ips=("10.20.0.11",), username="CORP\\alice", sgt=4, switch_id="192.0.2.10",
                interface="GigabitEthernet1/0/11", vlan=20, endpoint_profile="Windows10-Workstation",
                timestamp_ms=T0 + 1_000),
        Session(mac=MAC_B, ips=("10.20.0.12",), username="bob@corp.local", sgt_name="Contractors",
                switch_id="192.0.2.10", interface="GigabitEthernet1/0/12", timestamp_ms=T0 + 2_000),
        Session(mac=MAC_C, ips=("10.20.0.13",), username="02-00-00-00-0A-03", sgt=15, timestamp_ms=T0 + 3_000),
    ]  # fmt: skip


def body(items: list[Session] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sessions": [session_to_json(s) for s in (sessions() if items is None else items)],
        "security_groups": [
            {"value": 4, "name": "Employees", "description": "staff"},
            {"value": 5, "name": "Contractors"},
            {"value": 15, "name": "BYOD"},
        ],
    }
    out.update(extra)
    return out


def directory() -> DirectorySnapshot:
    """alice is in Team-A, which is in Engineering, which is in Staff; bob only in Domain Users."""
    groups = [
        ADGroup(sid=f"{DOM}-513", name="Domain Users", dn="CN=Domain Users,DC=corp,DC=local"),
        ADGroup(sid=f"{DOM}-1100", name="Staff", dn="CN=Staff,DC=corp,DC=local"),
        ADGroup(sid=f"{DOM}-1101", name="Engineering", dn="CN=Engineering,DC=corp,DC=local",
                member_of=(f"{DOM}-1100",)),
        ADGroup(sid=f"{DOM}-1102", name="Team-A", dn="CN=Team-A,DC=corp,DC=local", member_of=(f"{DOM}-1101",)),
    ]  # fmt: skip
    users = [
        ADUser(sid=f"{DOM}-2001", username="alice", dn="CN=Alice,DC=corp,DC=local", display_name="Alice Adams",
               groups=(f"{DOM}-1102", f"{DOM}-513")),
        ADUser(sid=f"{DOM}-2002", username="Bob", dn="CN=Bob,DC=corp,DC=local", display_name="Bob Brown",
               groups=(f"{DOM}-513",)),
    ]  # fmt: skip
    return DirectorySnapshot(users=users, groups=groups, highest_usn=100)


def identity_of(api: Api, mac: str) -> dict[str, Any]:
    r = api.graphql(IDENTITY, {"mac": mac})
    assert "errors" not in r, r
    return r["data"]["device"]["identity"]  # type: ignore[no-any-return]


def post(api: Api, payload: Any, token: str = ADMIN_TOKEN) -> Any:
    with api.client(token) as c:
        return c.post("/api/v1/identity", json=payload)


def graph_dump(api: Api) -> list[Any]:
    rows = api.store._query(
        "MATCH (n) OPTIONAL MATCH (n)-[r]->(m) RETURN labels(n), properties(n), type(r), properties(r), properties(m)",
        {}, name="dump",
    )  # fmt: skip
    return sorted(repr(sorted(r.items())) for r in rows)


def test_sessions_and_directory_show_user_groups_and_named_sgt(api: Api) -> None:
    r = post(api, body())
    assert r.status_code == 200, r.text
    assert r.json()["sessions"] == 3
    assert r.json()["security_groups"] == 3
    assert r.json()["skipped_users"] == 1  # the MAB session names the MAC, not a person
    merge_directory(api.store, directory(), now_ms=T0 + 5_000)

    alice = identity_of(api, MAC_A)
    assert alice["user"] == {"username": "alice", "displayName": "Alice Adams", "source": "ise",
                             "since": T0 + 1_000, "until": None}  # fmt: skip
    assert alice["adGroups"] == [
        {"sid": f"{DOM}-513", "name": "Domain Users", "via": "DIRECT", "depth": 1},
        {"sid": f"{DOM}-1102", "name": "Team-A", "via": "DIRECT", "depth": 1},
        {"sid": f"{DOM}-1101", "name": "Engineering", "via": "NESTED", "depth": 2},
        {"sid": f"{DOM}-1100", "name": "Staff", "via": "NESTED", "depth": 3},
    ]
    assert alice["sgt"] == {"value": 4, "name": "Employees", "source": "ise", "since": T0 + 1_000}
    assert alice["endpointProfile"] == "Windows10-Workstation"
    assert alice["profileSource"] == "ise"
    assert alice["ports"] == [
        {"switchId": "192.0.2.10", "interface": "GigabitEthernet1/0/11", "vlan": 20, "source": "ise"}
    ]
    assert alice["ipBindings"] == [{"ip": "10.20.0.11", "since": T0 + 1_000, "until": None, "source": "ise"}]

    bob = identity_of(api, MAC_B)  # SGT given by name only: resolved through the security groups
    assert bob["sgt"]["value"] == 5
    assert bob["sgt"]["name"] == "Contractors"
    assert [g["name"] for g in bob["adGroups"]] == ["Domain Users"]
    mab = identity_of(api, MAC_C)
    assert mab["user"] is None
    assert mab["sgt"]["name"] == "BYOD"

    r = api.graphql('{ user(name: "CORP\\\\alice") { username displayName sid groups { name via } devices { uid } } }')
    assert r["data"]["user"]["username"] == "alice"
    assert r["data"]["user"]["sid"] == f"{DOM}-2001"
    assert [d["uid"] for d in r["data"]["user"]["devices"]] == [MAC_A]
    assert {g["name"]: g["via"] for g in r["data"]["user"]["groups"]}["Staff"] == "NESTED"
    assert api.graphql('{ user(name: "nobody") { username } }')["data"]["user"] is None


def test_same_body_twice_changes_nothing(api: Api) -> None:
    assert post(api, body()).status_code == 200
    before = graph_dump(api)
    assert post(api, body()).status_code == 200
    assert graph_dump(api) == before


def test_disconnected_ends_the_assignment_and_binding_but_keeps_history(api: Api) -> None:
    assert post(api, body()).status_code == 200
    bye = Session(mac=MAC_A, ips=("10.20.0.11",), username="alice", state="DISCONNECTED", timestamp_ms=T0 + 9_000)
    assert post(api, body([bye])).status_code == 200
    ident = identity_of(api, MAC_A)
    assert ident["user"] is None  # nobody is on the device now
    assert ident["sessionState"] == "DISCONNECTED"
    r = api.graphql(
        "query($mac: String!) { device(mac: $mac) { identity { users { username since until } } } }", {"mac": MAC_A}
    )
    assert r["data"]["device"]["identity"]["users"] == [{"username": "alice", "since": T0 + 1_000, "until": T0 + 9_000}]
    assert ident["ipBindings"] == [{"ip": "10.20.0.11", "since": T0 + 1_000, "until": T0 + 9_000, "source": "ise"}]
    assert ident["sgt"]["value"] == 4  # the last known SGT stays
    # an older event arriving late does not reopen what ended
    late = Session(mac=MAC_A, ips=("10.20.0.11",), username="alice", timestamp_ms=T0 + 5_000)
    assert post(api, body([late])).status_code == 200
    assert identity_of(api, MAC_A)["user"] is None


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda b: b["sessions"][0].__setitem__("mac", "02:00:00:00:0a:zz"), "$.sessions[0].mac", "match"),
        (lambda b: b["sessions"][1].__setitem__("ips", ["10.0.0.300"]), "$.sessions[1].ips[0]", "IPv4 or IPv6"),
        (lambda b: b["sessions"][0].__setitem__("sgt", 70000), "$.sessions[0].sgt", "<= 65535"),
        (lambda b: b["sessions"][2].__setitem__("state", "ASLEEP"), "$.sessions[2].state", "ASLEEP"),
        (lambda b: b["sessions"][0].__setitem__("vlan", 0), "$.sessions[0].vlan", ">= 1"),
        (lambda b: b["security_groups"][1].__setitem__("name", ""), "$.security_groups[1].name", "length >= 1"),
        (lambda b: b.__setitem__("session", []), "$", "session"),
        (lambda b: b.__setitem__("egress_cells", [{"src_sgt": 4}]), "$.egress_cells[0]", "dst_sgt"),
    ],
    ids=["mac", "ip", "sgt", "state", "vlan", "group-name", "unknown-field", "cell"],
)
def test_invalid_bodies_get_422_naming_the_field_and_write_nothing(api: Api, mutate, path, words) -> None:  # type: ignore[no-untyped-def]
    b = body()
    mutate(b)
    r = post(api, b)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["path"] == path
    assert words in r.json()["detail"]["error"]
    assert api.store._query("MATCH (n) RETURN count(n) AS n", {}, name="count")[0]["n"] == 0


def test_limits_are_413(api: Api) -> None:
    many = [Session(mac=f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", timestamp_ms=T0) for i in range(1001)]
    r = post(api, body(many))
    assert r.status_code == 413
    assert "1004 rows" in r.json()["detail"]["error"]
    with api.client(ADMIN_TOKEN) as c:
        r = c.post("/api/v1/identity", content=b" " * 2_000_001)
    assert r.status_code == 413
    assert api.store._query("MATCH (n) RETURN count(n) AS n", {}, name="count")[0]["n"] == 0


def test_only_admin_or_identity_tokens_write(api: Api) -> None:
    assert post(api, body(), token=READER_TOKEN).status_code == 403
    assert post(api, body(), token=AGENT_TOKEN).status_code == 403
    with api.client(None) as c:
        assert c.post("/api/v1/identity", json=body()).status_code == 401


def test_identity_token_from_the_tokens_file_may_post_identity_and_nothing_else(
    store: FalkorDBStore, tmp_path: Path
) -> None:
    token = "pxgrid-service-token-0123456789"
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'identity = ["{token}"]\nreaders = ["{READER_TOKEN}"]\n')
    settings = make_settings(tokens_file=tokens, admin_token=None, reader_token=None)
    with BackgroundServer(create_app(settings, store)) as server:
        api = Api(server.url, store, settings)
        assert post(api, body(), token=token).status_code == 200
        with api.client(token) as c:
            assert c.post("/graphql", json={"query": "{ stats { devices } }"}).status_code == 403
            r = c.post("/api/v1/graphs", content=wire.encode(small_graph()))
            assert r.status_code == 403
            assert "identity token may not post graphs" in r.json()["detail"]["error"]
        assert identity_of(api, MAC_A)["user"]["username"] == "alice"


def test_minimal_session_any_mac_spelling_is_taken_as_seen_now(api: Api) -> None:
    before = int(time.time() * 1000)
    r = post(api, {"sessions": [{"mac": "02-00-00-00-0A-09", "ips": ["2001:DB8::0009"]}]})
    after = int(time.time() * 1000)
    assert r.status_code == 200, r.text
    q = '{ device(mac: "0200.0000.0a09") { uid identity { identityUpdated ipBindings { ip source } } } }'
    device = api.graphql(q)["data"]["device"]
    assert device["uid"] == "02:00:00:00:0a:09"
    assert before <= device["identity"]["identityUpdated"] <= after
    assert device["identity"]["ipBindings"] == [{"ip": "2001:db8::9", "source": "api"}]


def test_ip_only_flows_follow_the_ip_holder_in_time_through_the_api(api: Api) -> None:
    hour, day = 3_600_000, 86_400_000
    ip, server = "10.70.0.9", "02:00:00:00:0f:99"
    days = []
    for n, (src, dst, port) in enumerate([(ip, server, 443), (server, ip, 22)]):
        start = T0 + n * day + 8 * hour
        days.append(
            wire.EdgeGraph(
                schema_version=1, agent_id="edge-sw1", seq=n + 1, switch=wire.SwitchInfo(switch_id="sw1"),
                window=wire.Window(start=start, end=start + hour),
                nodes=[wire.IpEndpoint(ip=ip, local=True), wire.Device(mac=server)],
                edges=[wire.FlowsTo(src=src, dst=dst, protocol=6, port=port, bytes=10 * (n + 1), packets=1, flows=1,
                                    first_seen=start + 60_000, last_seen=start + 120_000)],
            ).sealed()
        )  # fmt: skip
    with api.client() as c:
        for g in days:
            assert c.post("/api/v1/graphs", content=wire.encode(g)).status_code == 200
    ip_devices = "{ devices(filter: {kind: IP}) { edges { node { uid identity { ipBindings { mac } } } } } }"
    assert api.graphql(ip_devices)["data"]["devices"]["edges"] == [
        {"node": {"uid": ip, "identity": {"ipBindings": []}}}
    ]
    holders = [
        Session(mac=MAC_A, ips=(ip,), username="alice", timestamp_ms=T0),  # day 1
        Session(mac=MAC_B, ips=(ip,), username="bob", timestamp_ms=T0 + day),  # day 2: DHCP gave it to bob
    ]
    r = post(api, body(holders))
    assert r.status_code == 200, r.text
    assert r.json()["correlated_flows"] == 2
    q = "query($mac: String!) { device(mac: $mac) { outbound { service peers: samplePeers } inbound { service } } }"
    a = api.graphql(q, {"mac": MAC_A})["data"]["device"]
    b = api.graphql(q, {"mac": MAC_B})["data"]["device"]
    assert (a["outbound"], a["inbound"]) == ([{"service": "tcp/443", "peers": [server]}], [])
    assert (b["outbound"], b["inbound"]) == ([], [{"service": "tcp/22"}])
    assert api.graphql(ip_devices)["data"]["devices"]["edges"] == []


class _StoreAway:
    """The real store for reads and schema, but every write finds it gone (restarting, network cut)."""

    def __init__(self, inner: FalkorDBStore) -> None:
        self.inner, self.dialect = inner, inner.dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, statement: str, params: Any = None) -> Any:
        raise StoreUnavailableError(f"FalkorDB {self.inner.target} ({statement}): Connection refused")


def test_store_unavailable_is_503_so_the_sender_retries(store: FalkorDBStore) -> None:
    settings = make_settings()
    with BackgroundServer(create_app(settings, _StoreAway(store))) as server:  # type: ignore[arg-type]
        r = post(Api(server.url, store, settings), body())
    assert r.status_code == 503
    assert "retry later" in r.json()["detail"]["error"]
