"""A complete ERS read from the fake ISE ERS (a real uvicorn) applied to a real FalkorDB: exact per-kind counts, what
ISE deleted leaves the graph (an SGT a device carries is kept and marked), a read failing part way removes nothing,
and GraphQL over real HTTP says where an SGT came from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clarion.api.app import create_app
from clarion.identity import merge_sessions
from clarion.identity.trustsec import Changes, TrustSecSyncResult, read_and_sync_trustsec
from clarion.server import BackgroundServer
from clarion.sources.ers_models import ERSError
from clarion.sources.model import Session
from clarion.store.falkordb_store import FalkorDBStore
from clarion_edge import wire
from tests.e2e.conftest import AGENT_TOKEN, READER_TOKEN, make_settings
from tests.fakes.ers.server import ERSServer
from tests.helpers import T0, small_graph
from tests.integration.test_ers import client, ers, run

pytestmark = pytest.mark.integration
__all__ = ["ers"]  # the fixture, shared with test_ers


def sgt_rows(store: FalkorDBStore) -> dict[int, dict[str, Any]]:
    rows = store._query(
        "MATCH (s:SGT) RETURN s.value AS v, s.name AS name, s.ise_deleted_at AS deleted, s.ise_id AS id", {}, name="s"
    )
    return {int(r["v"]): dict(r) for r in rows}


def cells(store: FalkorDBStore) -> set[tuple[int, int, tuple[str, ...]]]:
    rows = store._query(
        "MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT) RETURN a.value AS a, b.value AS b, e.sgacls AS acls", {}, name="e"
    )
    return {(int(r["a"]), int(r["b"]), tuple(r["acls"])) for r in rows}


def sgacl_names(store: FalkorDBStore) -> set[str]:
    return {r["n"] for r in store._query("MATCH (x:Sgacl) RETURN x.name AS n", {}, name="x")}


def _lab_policy(ers: ERSServer) -> dict[str, str]:
    """Two custom SGTs, an SGACL and the cell between them, as an ISE admin would have added them."""
    ids = {
        "lab": ers.state.add("sgt", {"name": "Lab", "value": 40, "description": "Lab hosts"}),
        "printers": ers.state.add("sgt", {"name": "Printers", "value": 41, "description": ""}),
        "web": ers.state.add(
            "sgacl", {"name": "Web", "aclcontent": "permit tcp dst eq 443", "ipVersion": "IPV4", "description": ""}
        ),
    }
    cell = {"sourceSgtId": ids["lab"], "destinationSgtId": ids["printers"], "matrixCellStatus": "ENABLED",
            "defaultRule": "DENY_IP", "sgacls": [ids["web"]], "description": ""}  # fmt: skip
    ids["cell"] = ers.state.add("egressmatrixcell", cell)
    return ids


async def _sync(server: ERSServer, store: FalkorDBStore, now_ms: int) -> TrustSecSyncResult:
    async with client(server) as c:
        return await read_and_sync_trustsec(store, c, now_ms)


def test_a_complete_ers_read_removes_what_ise_deleted_and_keeps_sgts_devices_carry(
    ers: ERSServer, store: FalkorDBStore
) -> None:
    ids = _lab_policy(ers)
    first = run(_sync(ers, store, T0))
    assert (first.sgts, first.sgacls, first.cells) == (Changes(added=18), Changes(added=5), Changes(added=2))
    assert (first.removed_sgt_nodes, first.kept_deleted_sgts) == (0, 0)
    assert (sgt_rows(store)[40]["name"], sgt_rows(store)[41]["id"]) == ("Lab", ids["printers"])
    assert (40, 41, ("Web",)) in cells(store)
    merge_sessions(store, [Session(mac="02:00:00:00:e5:01", sgt=40, timestamp_ms=T0)])  # a device tagged Lab

    async def delete_in_ise() -> None:  # through ERS itself, in the order ISE lets an admin do it
        async with client(ers) as c:
            for res, key in (("egressmatrixcell", "cell"), ("sgacl", "web"), ("sgt", "lab"), ("sgt", "printers")):
                await c.request("DELETE", f"/ers/config/{res}/{ids[key]}")

    run(delete_in_ise())
    second = run(_sync(ers, store, T0 + 1))
    assert (second.sgts, second.sgacls, second.cells) == (
        Changes(unchanged=16, removed=2),
        Changes(unchanged=4, removed=1),
        Changes(unchanged=1, removed=1),
    )
    assert (second.removed_sgt_nodes, second.kept_deleted_sgts) == (1, 1)
    sgts = sgt_rows(store)
    assert 41 not in sgts  # nothing refers to Printers: gone
    assert (sgts[40]["name"], sgts[40]["deleted"], sgts[40]["id"]) == ("Lab", T0 + 1, None)  # a device carries it
    assert sgacl_names(store) == {"Permit IP", "Deny IP", "Permit_IP_Log", "Deny_IP_Log"}
    assert cells(store) == {(65535, 65535, ("Permit IP",))}
    assert sum(1 for s in sgts.values() if s["deleted"] is None) == 17  # ISE's 16 defaults and ANY, untouched

    # the same tag defined again in ISE is ISE's again: no longer marked deleted
    ers.state.add("sgt", {"name": "Lab2", "value": 40, "description": ""})
    third = run(_sync(ers, store, T0 + 2))
    assert (third.sgts, third.removed_sgt_nodes, third.kept_deleted_sgts) == (Changes(added=1, unchanged=16), 0, 0)
    assert (sgt_rows(store)[40]["name"], sgt_rows(store)[40]["deleted"]) == ("Lab2", None)


def test_an_ers_read_that_fails_part_way_removes_nothing(ers: ERSServer, store: FalkorDBStore) -> None:
    ids = _lab_policy(ers)
    run(_sync(ers, store, T0))
    before = (sgt_rows(store), cells(store), sgacl_names(store))
    # between ISE's list and detail reads the SGACL vanished while the cell still names it: the read fails
    del ers.state.objects["sgacl"][ids["web"]]
    with pytest.raises(ERSError, match=rf"SGACL ids \['{ids['web']}'\] are not known SGACLs"):
        run(_sync(ers, store, T0 + 1))
    assert (sgt_rows(store), cells(store), sgacl_names(store)) == before


def test_graphql_says_where_an_sgt_came_from_and_when_ise_deleted_it(ers: ERSServer, store: FalkorDBStore) -> None:
    """Real HTTP: agents post traffic between SGT 4 and 10, ERS names them, ISE deletes 10 (devices carry it)."""
    settings = make_settings()
    with BackgroundServer(create_app(settings, store)) as server:
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        r = httpx.post(f"{server.url}/api/v1/graphs", content=wire.encode(small_graph()), headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        run(_sync(ers, store, T0))
        ten = next(o for o in ers.state.objects["sgt"].values() if o["value"] == 10)
        del ers.state.objects["sgt"][ten["id"]]  # ISE's admin deleted Point_of_Sale_Systems
        assert run(_sync(ers, store, T0 + 7)).sgts.removed == 1
        query = "{ policyMatrix { sgts { value name origin { source nameSource firstSeen iseSince iseDeletedAt } } } }"
        reply = httpx.post(
            f"{server.url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {READER_TOKEN}"},
            timeout=30,
        )  # fmt: skip
    assert reply.status_code == 200, reply.text
    sgts = {s["value"]: s for s in reply.json()["data"]["policyMatrix"]["sgts"]}
    assert sgts[4]["name"] == "Employees"
    assert sgts[4]["origin"]["nameSource"] == "ise"
    assert (sgts[4]["origin"]["iseSince"], sgts[4]["origin"]["iseDeletedAt"]) == (T0, None)
    assert sgts[10]["name"] == "Point_of_Sale_Systems"  # still meaningful for the devices tagged with it
    assert (sgts[10]["origin"]["iseSince"], sgts[10]["origin"]["iseDeletedAt"]) == (T0, T0 + 7)
    assert (sgts[10]["origin"]["source"], sgts[10]["origin"]["firstSeen"]) == ("netflow", T0)  # the agents' window
