"""The ERS client against the fake ISE ERS served by a real uvicorn: reads, paging, errors, CSRF, writes and dry
runs (a complete read applied to the graph is in test_ers_sync.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clarion.sources.ers import ERSClient, ERSConfig
from clarion.sources.ers_models import (
    ERSAuthError,
    ERSError,
    ERSForbiddenError,
    ERSNotFoundError,
    TrustSecConfig,
)
from clarion.sources.model import EgressCell, Sgacl
from tests.fakes.ers import data
from tests.fakes.ers.server import ERSServer
from tests.fakes.ers.state import FakeERSState

pytestmark = pytest.mark.integration

ADMIN = ("ersadmin", "Admin-Pass1")
OPERATOR = ("ersop", "Oper-Pass1")


@pytest.fixture
def ers() -> Iterator[ERSServer]:
    with ERSServer() as server:
        yield server


def client(server: ERSServer, user: tuple[str, str] = ADMIN, **kw: Any) -> ERSClient:
    return ERSClient(ERSConfig(server.base_url, user[0], user[1], **kw))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _read(server: ERSServer, **kw: Any) -> TrustSecConfig:
    async with client(server, **kw) as c:
        return await c.read_trustsec()


def test_reads_default_policy_with_real_ids(ers: ERSServer) -> None:
    config = run(_read(ers))
    sgts = {sg.name: sg for sg in config.security_groups}
    assert len(sgts) == 16
    assert "ANY" not in sgts
    assert sgts["Employees"].value == 4
    assert sgts["TrustSec_Devices"].ise_id == "947832a0-8c01-11e6-996c-525400b48521"
    assert sgts["Auditors"].description == "Auditor Security Group"
    acls = {a.name: a for a in config.sgacls}
    assert (acls["Permit IP"].aces, acls["Permit IP"].ip_version) == ("permit ip", "IP_AGNOSTIC")
    assert config.cells == [
        EgressCell(65535, 65535, ("Permit IP",), "PERMIT_IP", "ENABLED", ise_id=data.ANY_ANY_CELL_ID)
    ]


def test_paging_follows_next_page_with_size_100(ers: ERSServer) -> None:
    for i in range(230):
        ers.state.add("sgt", {"name": f"Extra_{i:03d}", "value": 1000 + i, "description": ""})

    async def go() -> list[str]:
        async with client(ers) as c:
            return [item["name"] async for item in c.search("sgt")]

    names = run(go())
    assert len(set(names)) == len(names) == 246
    lists = [p for m, p in ers.state.requests if p.startswith("/ers/config/sgt?")]
    assert lists == [
        "/ers/config/sgt?size=100&page=1",
        "/ers/config/sgt?size=100&page=2",
        "/ers/config/sgt?size=100&page=3",
    ]


def test_detail_reads_are_limited_to_max_concurrency(ers: ERSServer) -> None:
    ers.state.delay_s = 0.03
    for i in range(30):
        ers.state.add("sgt", {"name": f"Extra_{i:03d}", "value": 1000 + i})
    sgts = run(_wrap_sgts(ers, max_concurrency=3))
    assert len(sgts) == 46
    assert ers.state.peak_in_flight == 3


async def _wrap_sgts(server: ERSServer, **kw: Any) -> list[Any]:
    async with client(server, **kw) as c:
        return await c.security_groups()


def test_filters_on_egress_tag_values(ers: ERSServer) -> None:
    ers.state.add(
        "egressmatrixcell",
        {"sourceSgtId": "93ad6890" + data.SUFFIX, "destinationSgtId": "93f91790" + data.SUFFIX,
         "matrixCellStatus": "ENABLED", "defaultRule": "NONE", "sgacls": [data.DENY_IP_ID]},
    )  # fmt: skip

    async def go() -> list[dict[str, Any]]:
        async with client(ers) as c:
            return [i async for i in c.search("egressmatrixcell", ["sgtSrcValue.EQ.4", "sgtDstValue.EQ.14"])]

    found = run(go())
    assert [i["name"] for i in found] == ["Employees-PCI_Servers"]


def test_fake_enforces_accept_and_answers_xml_by_default(ers: ERSServer) -> None:
    url = f"{ers.base_url}/ers/config/sgt"
    xml = httpx.get(url, auth=ADMIN)
    assert xml.status_code == 200
    assert xml.headers["content-type"].startswith("application/xml")
    bad = httpx.get(url, auth=ADMIN, headers={"Accept": "text/plain"})
    assert bad.status_code == 406
    assert "Accept header 'text/plain' is not supported" in bad.json()["ERSResponse"]["messages"][0]["title"]
    ok = httpx.get(url, auth=ADMIN, headers={"Accept": "application/json"})
    assert ok.json()["SearchResult"]["total"] == 16
    assert "nextPage" not in ok.json()["SearchResult"]  # 16 fit in the default page of 20
    too_big = httpx.get(url + "?size=101", auth=ADMIN, headers={"Accept": "application/json"})
    assert too_big.status_code == 400


def test_unknown_id_raises_not_found_with_ise_message_and_path(ers: ERSServer) -> None:
    async def go() -> None:
        async with client(ers) as c:
            await c.get("sgacl", "no-such-id")

    with pytest.raises(ERSNotFoundError) as err:
        run(go())
    assert err.value.status == 404
    assert err.value.path == "/ers/config/sgacl/no-such-id"
    assert "Resource with id 'no-such-id' not found" in str(err.value)


def test_bad_password_is_401_and_not_leaked(ers: ERSServer) -> None:
    with pytest.raises(ERSAuthError) as err:
        run(_read(ers, user=("ersadmin", "Nope-Secret-9")))
    assert err.value.status == 401
    assert "Nope-Secret-9" not in str(err.value)


def test_operator_cannot_write(ers: ERSServer) -> None:
    async def go() -> None:
        async with client(ers, OPERATOR) as c:
            await c.create_sgacl(Sgacl("Web_Only", "permit tcp dst eq 443\ndeny ip", ip_version="IPV4"))

    with pytest.raises(ERSForbiddenError, match="ERS Operator may only read"):
        run(go())


def test_create_update_sgacl_and_duplicate(ers: ERSServer) -> None:
    acl = Sgacl("Web_Only", "permit tcp dst eq 443\ndeny ip", ip_version="IPV4", description="web")

    async def go() -> tuple[Any, Any, dict[str, Any]]:
        async with client(ers) as c:
            created = await c.create_sgacl(acl)
            updated = await c.update_sgacl(
                Sgacl("Web_Only", "permit tcp dst eq 8443\ndeny ip", created.ise_id, "IPV4", "web")
            )
            return created, updated, await c.get("sgacl", created.ise_id)

    created, updated, stored = run(go())
    assert (created.sent, created.status) == (True, 201)
    assert created.ise_id in ers.state.objects["sgacl"]
    assert stored["aclcontent"] == "permit tcp dst eq 8443\ndeny ip"
    assert updated.status == 200
    assert [f["field"] for f in updated.updated_fields] == ["aclcontent"]
    with pytest.raises(ERSError, match=r"HTTP 400: Sgacl Create failed: Name 'Web_Only' already exists"):
        run(_create(ers, acl))


async def _create(server: ERSServer, acl: Sgacl, **kw: Any) -> Any:
    async with client(server, **kw) as c:
        return await c.create_sgacl(acl)


def test_put_egress_cell_creates_then_updates_one_cell_per_pair(ers: ERSServer) -> None:
    cell = EgressCell(4, 14, ("Deny IP",), "NONE", "ENABLED")

    async def go() -> tuple[Any, Any, TrustSecConfig]:
        async with client(ers) as c:
            first = await c.put_egress_cell(cell, await c.read_trustsec())
            second = await c.put_egress_cell(
                EgressCell(4, 14, ("Permit IP", "Deny IP"), "DENY_IP", "MONITOR"), await c.read_trustsec()
            )
            return first, second, await c.read_trustsec()

    first, second, after = run(go())
    assert (first.request.method, first.status) == ("POST", 201)
    assert (second.request.method, second.ise_id) == ("PUT", first.ise_id)
    assert "matrixSGACLs" in [f["field"] for f in second.updated_fields]
    assert after.cell(4, 14) == EgressCell(4, 14, ("Permit IP", "Deny IP"), "DENY_IP", "MONITOR", first.ise_id)
    assert len(after.cells) == 2
    dup = EgressCell(4, 14, (), "NONE", "ENABLED")
    with pytest.raises(ERSError, match="already a policy for this source and destination"):
        run(_create_cell(ers, dup))


async def _create_cell(server: ERSServer, cell: EgressCell) -> Any:
    async with client(server) as c:
        return await c.create_egress_cell(cell, await c.read_trustsec())


def test_dry_run_plans_writes_and_sends_none(ers: ERSServer) -> None:
    async def go() -> list[Any]:
        async with client(ers) as c:
            config = await c.read_trustsec()
            return [
                await c.create_sgacl(Sgacl("Web_Only", "permit tcp dst eq 443", ip_version="IPV4"), dry_run=True),
                await c.put_egress_cell(EgressCell(4, 14, ("Deny IP",)), config, dry_run=True),
                await c.put_egress_cell(EgressCell(65535, 65535, ("Deny IP",), "DENY_IP"), config, dry_run=True),
            ]

    plans = run(go())
    assert [p.sent for p in plans] == [False, False, False]
    assert [(p.request.method, p.request.path) for p in plans] == [
        ("POST", "/ers/config/sgacl"),
        ("POST", "/ers/config/egressmatrixcell"),
        ("PUT", f"/ers/config/egressmatrixcell/{data.ANY_ANY_CELL_ID}"),
    ]
    assert plans[1].request.body == {
        "EgressMatrixCell": {
            "sourceSgtId": "93ad6890" + data.SUFFIX,
            "destinationSgtId": "93f91790" + data.SUFFIX,
            "matrixCellStatus": "ENABLED",
            "defaultRule": "NONE",
            "sgacls": [data.DENY_IP_ID],
            "description": "Clarion 4->14",
        }
    }
    assert all(m == "GET" for m, _ in ers.state.requests)


def test_put_sgacl_updates_by_name_or_creates(ers: ERSServer) -> None:
    async def go() -> list[Any]:
        async with client(ers) as c:
            config = await c.read_trustsec()
            return [
                await c.put_sgacl(Sgacl("Deny IP", "deny ip log", ip_version="IP_AGNOSTIC"), config, dry_run=True),
                await c.put_sgacl(Sgacl("Web_Only", "permit tcp dst eq 443", ip_version="IPV4"), config),
            ]

    update, create = run(go())
    assert (update.request.method, update.request.path) == ("PUT", f"/ers/config/sgacl/{data.DENY_IP_ID}")
    assert update.request.body["Sgacl"]["id"] == data.DENY_IP_ID
    assert (create.request.method, create.status) == ("POST", 201)
    assert ers.state.objects["sgacl"][create.ise_id]["aclcontent"] == "permit tcp dst eq 443"


def test_unknown_names_in_a_cell_are_refused_before_sending(ers: ERSServer) -> None:
    async def go(cell: EgressCell) -> Any:
        async with client(ers) as c:
            return await c.put_egress_cell(cell, await c.read_trustsec(), dry_run=True)

    with pytest.raises(ValueError, match="SGT 77 is not defined in ISE"):
        run(go(EgressCell(77, 4)))
    with pytest.raises(ValueError, match="SGACL 'Nope' is not defined in ISE"):
        run(go(EgressCell(4, 5, ("Nope",))))


def test_csrf_token_is_fetched_sent_and_refreshed(ers: ERSServer) -> None:
    ers.state.csrf = True
    acl = Sgacl("Web_Only", "permit tcp dst eq 443", ip_version="IPV4")
    with pytest.raises(ERSForbiddenError, match="CSRF token validation failed"):
        run(_create(ers, acl))
    assert run(_create(ers, acl, csrf=True)).status == 201
    fetches = [p for m, p in ers.state.requests if p.endswith("/versioninfo")]
    assert fetches == ["/ers/config/sgt/versioninfo"]

    async def two_writes() -> list[int | None]:
        async with client(ers, csrf=True) as c:
            first = await c.create_sgacl(Sgacl("A1", "permit ip", ip_version="IPV4"))
            ers.state.sessions.clear()  # ISE dropped the idle session: the next write gets 403, refetches, resends
            second = await c.create_sgacl(Sgacl("A2", "permit ip", ip_version="IPV4"))
            return [first.status, second.status]

    assert run(two_writes()) == [201, 201]


def test_tls_with_ca_bundle_and_refusal_without(tmp_path: Path) -> None:
    from tests.fakes.pxgrid.certs import make_pki

    pki = make_pki(tmp_path)
    with ERSServer(certfile=pki.server_cert, keyfile=pki.server_key) as server:
        assert server.base_url.startswith("https://")
        assert len(run(_read(server, verify=str(pki.ca_cert))).security_groups) == 16
        server.state.csrf = True  # the session cookie is Secure over https: it must still round-trip
        acl = Sgacl("Web_Only", "permit tcp dst eq 443", ip_version="IPV4")
        assert run(_create(server, acl, csrf=True, verify=str(pki.ca_cert))).status == 201
        with pytest.raises(ERSError, match="CERTIFICATE_VERIFY_FAILED"):
            run(_read(server))


def test_config_limits() -> None:
    with pytest.raises(ValueError, match=r"page_size must be 1\.\.100"):
        ERSConfig("https://ise:9060", "u", "p", page_size=500)
    with pytest.raises(ValueError, match="no path"):
        ERSConfig("https://ise:9060/ers/config", "u", "p")
    assert "secret" not in repr(ERSConfig("https://ise:9060", "u", "secret"))


def test_fake_state_is_fresh_per_server() -> None:
    assert len(FakeERSState().objects["sgt"]) == 16


def test_ciscoisesdk_drives_the_fake_and_our_client_reads_what_it_wrote(ers: ERSServer) -> None:
    """Conformance: Cisco's own SDK (dev-only) pages, reads, fetches CSRF and creates against the fake."""
    sdk = pytest.importorskip("ciscoisesdk")
    ers.state.csrf = True
    for i in range(130):
        ers.state.add("sgt", {"name": f"Extra_{i:03d}", "value": 1000 + i})
    api = sdk.IdentityServicesEngineAPI(
        username=ADMIN[0], password=ADMIN[1], uses_api_gateway=True, base_url=ers.base_url,
        version="3.3_patch_1", verify=False, uses_csrf_token=True,
    )  # fmt: skip
    pages = list(api.security_groups.get_all_generator(size=100, page=1))
    assert [len(p.response.SearchResult.resources) for p in pages] == [100, 46]
    assert api.security_groups.get_by_id(id="947832a0" + data.SUFFIX).response.Sgt.value == 2
    created = api.security_groups_acls.create_security_groups_acl(
        name="Web_Only", description="web", ip_version="IPV4", aclcontent="permit tcp dst eq 443\ndeny ip"
    )
    assert created.status_code == 201
    cell = api.egress_matrix_cell.create_egress_matrix_cell(
        source_sgt_id="93ad6890" + data.SUFFIX, destination_sgt_id="93f91790" + data.SUFFIX,
        matrix_cell_status="MONITOR", default_rule="DENY_IP", sgacls=[created.headers["Location"].rsplit("/", 1)[1]],
        description="from the sdk",
    )  # fmt: skip
    assert cell.status_code == 201
    found = api.egress_matrix_cell.get_all(filter=["sgtSrcValue.EQ.4", "sgtDstValue.EQ.14"]).response
    assert [r.name for r in found.SearchResult.resources] == ["Employees-PCI_Servers"]
    config = run(_read(ers))
    assert config.cell(4, 14) == EgressCell(4, 14, ("Web_Only",), "DENY_IP", "MONITOR", cell.headers["Location"][-36:])
