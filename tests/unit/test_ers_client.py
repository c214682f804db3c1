"""ERS mapping and transport rules that need no server: envelopes, parsing, validation, retries, hostile hrefs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from clarion.sources.ers import ERSClient, ERSConfig
from clarion.sources.ers_models import (
    ERSError,
    ERSNotFoundError,
    TrustSecConfig,
    cell_body,
    error_for,
    parse_cell,
    parse_sgacl,
    parse_sgt,
    sgacl_body,
)
from clarion.sources.model import EgressCell, SecurityGroup, Sgacl

REAL_SGT = {
    "id": "947832a0-8c01-11e6-996c-525400b48521",
    "name": "TrustSec_Devices",
    "description": "TrustSec Devices Security Group",
    "value": 2,
    "generationId": "18",
    "propogateToApic": True,
}


def test_parse_real_ise_objects() -> None:
    assert parse_sgt(REAL_SGT) == SecurityGroup(
        2, "TrustSec_Devices", REAL_SGT["id"], "TrustSec Devices Security Group"
    )
    acl = {
        "id": "1dcf",
        "name": "Python_Unit_Test",
        "generationId": "0",
        "ipVersion": "IPV4",
        "aclcontent": "permit ip",
    }
    assert parse_sgacl(acl) == Sgacl("Python_Unit_Test", "permit ip", "1dcf", "IPV4", None)
    cell = {"id": "c1", "sourceSgtId": "a", "destinationSgtId": "b", "matrixCellStatus": "MONITOR",
            "defaultRule": "DENY_IP", "sgacls": ["x", "y"]}  # fmt: skip
    assert parse_cell(cell, {"a": 4, "b": 14}, {"x": "Web", "y": "Deny IP"}) == EgressCell(
        4, 14, ("Web", "Deny IP"), "DENY_IP", "MONITOR", "c1"
    )
    with pytest.raises(ValueError, match="SGT id b is not a known Security Group"):
        parse_cell(cell, {"a": 4}, {"x": "Web", "y": "Deny IP"})
    with pytest.raises(ValueError, match="field 'value' missing or not int: '2'"):
        parse_sgt({**REAL_SGT, "value": "2"})


def test_error_envelope_becomes_message() -> None:
    body = {"ERSResponse": {"operation": "POST-create-networkdevice", "messages": [
        {"title": "Network Device Create failed: Device Name Already Exist", "type": "ERROR",
         "code": "Application resource validation exception"}]}}  # fmt: skip
    err = error_for(400, "POST", "/ers/config/networkdevice", body)
    assert str(err) == (
        "ISE ERS POST /ers/config/networkdevice: HTTP 400: Network Device Create failed: Device Name Already Exist "
        "(Application resource validation exception)"
    )
    assert err.operation == "POST-create-networkdevice"
    assert isinstance(error_for(404, "GET", "/x", None), ERSNotFoundError)
    assert "unauthorized" in str(error_for(401, "GET", "/x", None))


def test_write_bodies_are_validated_before_sending() -> None:
    with pytest.raises(ValueError, match="ip_version 'IPV5'"):
        sgacl_body(Sgacl("Web", "permit ip", ip_version="IPV5"), with_id=False)
    with pytest.raises(ValueError, match="aces must be"):
        sgacl_body(Sgacl("Web", "  ", ip_version="IPV4"), with_id=False)
    with pytest.raises(ValueError, match="name 'bad/name'"):
        sgacl_body(Sgacl("bad/name", "permit ip", ip_version="IPV4"), with_id=False)
    with pytest.raises(ValueError, match="update needs ise_id"):
        sgacl_body(Sgacl("Web", "permit ip", ip_version="IPV4"), with_id=True)
    with pytest.raises(ValueError, match="default_rule 'ALLOW'"):
        cell_body(EgressCell(4, 5, default_rule="ALLOW"), TrustSecConfig(), with_id=False)


def _client(handler: Any) -> ERSClient:
    return ERSClient(ERSConfig("https://ise.test:9060", "u", "p"), transport=httpx.MockTransport(handler))


def test_gets_are_retried_on_5xx_and_writes_are_not() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "GET" and calls.count("GET") == 1:
            return httpx.Response(502)
        if request.method == "POST":
            return httpx.Response(500, json={"ERSResponse": {"messages": [{"title": "CRUD exception"}]}})
        assert request.headers["Accept"] == "application/json"
        return httpx.Response(200, json={"Sgt": REAL_SGT}, headers={"content-type": "application/json;charset=utf-8"})

    async def go() -> Any:
        async with _client(handler) as c:
            sgt = await c.get("sgt", "x")
            with pytest.raises(ERSError, match="HTTP 500: CRUD exception"):
                await c.create_sgacl(Sgacl("Web", "permit ip", ip_version="IPV4"))
            return sgt

    assert asyncio.run(go())["value"] == 2
    assert calls == ["GET", "GET", "POST"]


def test_next_page_on_another_host_keeps_only_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        page = request.url.params.get("page")
        result: dict[str, Any] = {"total": 2, "resources": [{"id": f"id{page}", "name": f"n{page}"}]}
        if page == "1":
            result["nextPage"] = {"rel": "next", "href": "https://evil.example:9060/ers/config/sgt?size=1&page=2"}
        return httpx.Response(200, json={"SearchResult": result}, headers={"content-type": "application/json"})

    async def go() -> list[str]:
        async with _client(handler) as c:
            return [i["id"] async for i in c.search("sgt")]

    assert asyncio.run(go()) == ["id1", "id2"]
    assert seen == [
        "https://ise.test:9060/ers/config/sgt?size=100&page=1",
        "https://ise.test:9060/ers/config/sgt?size=1&page=2",
    ]


def test_non_json_reply_is_an_error_not_a_crash() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<searchResult/>", headers={"content-type": "application/xml"})

    async def go() -> None:
        async with _client(handler) as c:
            await c.get("sgt", "x")

    with pytest.raises(ERSError, match="reply is not JSON with root key 'Sgt'"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"total": "2", "resources": []}, "total is '2', expected a non-negative integer"),
        ({"total": 1, "resources": {"id": "x"}}, "resources is dict, expected a list"),
        ({"total": 1, "resources": [{"name": "no id"}]}, r"resources\[0\] has no id string"),
        ({"total": 2, "resources": [{"id": "a"}], "nextPage": "page2"}, "nextPage is not an object"),
    ],
)
def test_malformed_search_page_names_the_path(result: dict[str, Any], message: str) -> None:
    """A page ISE could not have sent is an ERSError naming the request, not a KeyError from deep inside."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"SearchResult": result}, headers={"content-type": "application/json"})

    async def go() -> list[str]:
        async with _client(handler) as c:
            return [i["id"] async for i in c.search("sgt")]

    with pytest.raises(ERSError, match=f"GET /ers/config/sgt: .*malformed SearchResult: {message}"):
        asyncio.run(go())
