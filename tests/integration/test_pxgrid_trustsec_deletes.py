"""ISE's TrustSec deletes published on pxGrid reach the graph: fake ISE → pxGrid service → HttpSink → uvicorn
``POST /api/v1/identity`` → FalkorDB (decision 0010: an SGT devices still carry is kept, marked deleted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from clarion.api.app import create_app
from clarion.config import Settings
from clarion.server import BackgroundServer
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import HttpSink
from clarion.store.falkordb_store import FalkorDBStore
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import Pki
from tests.fakes.pxgrid.data import session
from tests.fakes.pxgrid.harness import T0, settings_for, streaming, wait_for
from tests.fakes.pxgrid.pubsub import SGACL_TOPIC
from tests.integration.pxgrid_world import fake, pki, run_service

pytestmark = pytest.mark.integration
__all__ = ["fake", "pki", "run_service"]  # fixtures shared through pxgrid_world, imported so pytest sees them here

ADMIN = "admin-token-trustsec-0123456789"


def sgt(store: FalkorDBStore, value: int) -> dict[str, Any] | None:
    rows = store._query(
        "MATCH (s:SGT {value: $v}) OPTIONAL MATCH (d:Device)-[:HAS_SGT]->(s) "
        "RETURN s.name AS name, s.ise_deleted_at AS deleted_at, count(d) AS devices",
        {"v": value}, name="sgt",
    )  # fmt: skip
    return rows[0] if rows else None


def sgacls(store: FalkorDBStore) -> set[str]:
    return {r["n"] for r in store._query("MATCH (a:Sgacl) RETURN a.name AS n", {}, name="acls")}


def test_pxgrid_trustsec_deletes_reach_the_graph(
    fake: FakePxGrid, pki: Pki, run_service: Callable[..., PxGridService], store: FalkorDBStore
) -> None:
    settings = Settings(graph_url=None, admin_token=SecretStr(ADMIN), reader_token=SecretStr("reader-" + ADMIN))
    fake.add_sessions([session(1, T0 + 1)])  # an Employees (4) device
    with BackgroundServer(create_app(settings, store)) as server:
        sink = HttpSink(server.url, ADMIN, backoff_s=0.05)
        svc = run_service(settings_for(fake, pki), sink)
        wait_for(lambda: streaming(svc)() and fake.subscribed() == 1, timeout=30)
        wait_for(lambda: (sgt(store, 4) or {}).get("devices") == 1, timeout=30, what="the device tagged Employees")
        assert sgt(store, 5) == {"name": "Contractors", "deleted_at": None, "devices": 0}
        assert "Permit_Web" in sgacls(store)

        # a group nothing carries goes; one a device still carries stays, marked with the time of the delete
        fake.publish_security_group("DELETE", {"id": "sg-5", "name": "Contractors", "description": "", "tag": 5})
        wait_for(lambda: sgt(store, 5) is None, timeout=30, what="SGT 5 removed")
        fake.publish_security_group("DELETE", {"id": "sg-4", "name": "Employees", "description": "", "tag": 4})
        wait_for(lambda: (sgt(store, 4) or {}).get("deleted_at") is not None, timeout=30, what="SGT 4 retired")
        kept = sgt(store, 4)
        assert kept is not None
        assert (kept["name"], kept["devices"]) == ("Employees", 1)
        assert sgt(store, 6) == {"name": "Guests", "deleted_at": None, "devices": 0}  # the others are untouched

        acl = {"id": "acl-1", "name": "Permit_Web", "ipVersion": "IPV4", "acl": "permit ip", "isDeleted": True}
        fake.publish_raw(SGACL_TOPIC, json.dumps(acl).encode())
        wait_for(lambda: "Permit_Web" not in sgacls(store), timeout=30, what="SGACL Permit_Web removed")
        assert sink.rejected == 0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"deleted_security_groups": [70000]}, "$.deleted_security_groups[0]"),
        ({"deleted_security_groups": ["Guests"]}, "$.deleted_security_groups[0]"),
        ({"deleted_security_groups": [6, -1]}, "$.deleted_security_groups[1]"),
        ({"deleted_sgacls": [""]}, "$.deleted_sgacls[0]"),
    ],
)
def test_bad_deletes_are_refused_with_the_field_path(store: FalkorDBStore, body: dict[str, Any], path: str) -> None:
    settings = Settings(graph_url=None, admin_token=SecretStr(ADMIN), reader_token=SecretStr("reader-" + ADMIN))
    with BackgroundServer(create_app(settings, store)) as server:
        r = httpx.post(f"{server.url}/api/v1/identity", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 422
    assert r.json()["detail"]["path"] == path


def test_too_many_deletes_are_refused_as_too_large(store: FalkorDBStore) -> None:
    settings = Settings(
        graph_url=None, admin_token=SecretStr(ADMIN), reader_token=SecretStr("reader-" + ADMIN), max_nodes=10
    )
    body = {"deleted_security_groups": list(range(11))}
    with BackgroundServer(create_app(settings, store)) as server:
        r = httpx.post(f"{server.url}/api/v1/identity", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 413
        assert r.json()["detail"]["max_rows"] == 10
        ok = httpx.post(
            f"{server.url}/api/v1/identity", json={"deleted_security_groups": [6, 6]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json()["deleted_security_groups"] == 1
