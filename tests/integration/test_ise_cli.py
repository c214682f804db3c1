"""``clarion ise sync`` through the real CLI, against the fake ISE ERS over real HTTPS and a real embedded FalkorDB:
exact counts and graph contents, deletions on the next sync, and each failure's message and exit code with the
graph untouched."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from clarion.cli import app
from clarion.identity.ise_cli import base_url
from clarion.identity.ise_errors import EXIT_AUTH, EXIT_MALFORMED, EXIT_SETTINGS, EXIT_TLS, EXIT_UNREACHABLE, classify
from clarion.store.falkordb_store import FalkorDBStore
from tests.fakes.ers.server import ERSServer
from tests.fakes.pxgrid.certs import Pki, make_pki
from tests.integration.test_ers import ADMIN, OPERATOR
from tests.integration.test_ers_sync import _lab_policy, cells, sgacl_names, sgt_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ise-pki"))


@pytest.fixture
def ers(pki: Pki) -> Iterator[ERSServer]:
    with ERSServer(certfile=pki.server_cert, keyfile=pki.server_key) as server:
        yield server


class _Borrowed:
    """The test's store as the command sees it: the command closes it, the fixture owns the server."""

    def __init__(self, store: FalkorDBStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def cli_store(store: FalkorDBStore, monkeypatch: pytest.MonkeyPatch) -> FalkorDBStore:
    """Make the command's store (chosen by CLARION_* settings) the per-test graph of the shared embedded FalkorDB."""
    monkeypatch.setattr("clarion.store.factory.open_store", lambda settings: _Borrowed(store))
    return store


def env_for(server: ERSServer, pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "CLARION_ISE_HOST": "127.0.0.1", "CLARION_ISE_ERS_PORT": str(server.port),
        "CLARION_ISE_ERS_USER": ADMIN[0], "CLARION_ISE_ERS_PASSWORD": ADMIN[1],
        "CLARION_ISE_CA_FILE": str(pki.ca_cert), **extra,
    }  # fmt: skip


def sync(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["ise", "sync", *args], env=env)


def summary(r: Result) -> dict[str, Any]:
    assert r.exit_code == 0, r.output
    parsed: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return parsed


def kinds(added: int = 0, updated: int = 0, unchanged: int = 0, removed: int = 0) -> dict[str, int]:
    """One kind's counts as the JSON summary prints them."""
    read = added + updated + unchanged
    return {"read": read, "added": added, "updated": updated, "unchanged": unchanged, "removed": removed}


def new(n: int) -> dict[str, int]:
    return kinds(added=n)


def graph(store: FalkorDBStore) -> tuple[Any, ...]:
    return sgt_rows(store), cells(store), sgacl_names(store)


def test_sync_into_the_embedded_store_of_the_data_dir(ers: ERSServer, pki: Pki, tmp_path: Path) -> None:
    """No test seam: the command starts the embedded FalkorDB of CLARION_DATA_DIR, merges, and stops it."""
    ids = _lab_policy(ers)
    env = env_for(ers, pki, CLARION_DATA_DIR=str(tmp_path / "data"), CLARION_GRAPH_NAME="isecli")
    r = sync(env)
    out = summary(r)
    assert out == {
        "host": f"https://127.0.0.1:{ers.port}", "ok": True, "sgts": new(18), "sgacls": new(5),
        "egress_cells": new(2), "removed_sgt_nodes": 0, "kept_deleted_sgts": 0,
        "requests": out["requests"], "merge_seconds": out["merge_seconds"],
    }  # fmt: skip
    # 3 list pages and one GET per object: 18 SGTs + 5 SGACLs + 2 cells
    assert out["requests"] == 3 + 18 + 5 + 2
    assert "SGTs: 18 read" in r.stderr
    assert "egress matrix cells: 2 read" in r.stderr
    assert "SGTs: 18 added, 0 updated, 0 unchanged, 0 removed" in r.stderr
    assert "egress matrix cells: 2 added, 0 updated, 0 unchanged, 0 removed" in r.stderr
    assert "applied in one transaction (28 ERS requests" in r.stderr
    store = FalkorDBStore.embedded(tmp_path / "data", graph="isecli")  # the command stopped its store: reopen it
    try:
        sgts = sgt_rows(store)
        assert (sgts[40]["name"], sgts[40]["id"], sgts[40]["deleted"]) == ("Lab", ids["lab"], None)
        assert (sgts[4]["name"], sgts[41]["name"]) == ("Employees", "Printers")
        assert cells(store) == {(65535, 65535, ("Permit IP",)), (40, 41, ("Web",))}
        assert sgacl_names(store) == {"Permit IP", "Deny IP", "Permit_IP_Log", "Deny_IP_Log", "Web"}
    finally:
        store.close()


def test_second_sync_removes_what_ise_deleted(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    ids = _lab_policy(ers)
    env = env_for(ers, pki)
    assert summary(sync(env))["sgacls"]["read"] == 5
    assert "Web" in sgacl_names(cli_store)
    # the ISE admin deletes the cell and then the SGACL it used (ISE refuses the other order)
    del ers.state.objects["egressmatrixcell"][ids["cell"]]
    del ers.state.objects["sgacl"][ids["web"]]
    out = summary(sync(env, "--page-size", "7"))
    assert (out["sgacls"], out["egress_cells"]) == (kinds(unchanged=4, removed=1), kinds(unchanged=1, removed=1))
    assert (out["sgts"], out["removed_sgt_nodes"], out["kept_deleted_sgts"]) == (kinds(unchanged=18), 0, 0)
    assert sgacl_names(cli_store) == {"Permit IP", "Deny IP", "Permit_IP_Log", "Deny_IP_Log"}
    assert cells(cli_store) == {(65535, 65535, ("Permit IP",))}
    pages = [p for _, p in ers.state.requests if p.startswith("/ers/config/sgt?")]
    assert pages[-3:] == [f"/ers/config/sgt?size=7&page={n}" for n in (1, 2, 3)]  # 18 SGTs in pages of 7


def test_deleted_sgt_devices_carry_is_kept_and_counted(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    from clarion.identity import merge_sessions
    from clarion.sources.model import Session
    from tests.helpers import T0

    ids = _lab_policy(ers)
    env = env_for(ers, pki)
    summary(sync(env))
    merge_sessions(cli_store, [Session(mac="02:00:00:00:e5:01", sgt=40, timestamp_ms=T0)])
    for res, key in (("egressmatrixcell", "cell"), ("sgt", "lab"), ("sgt", "printers")):
        del ers.state.objects[res][ids[key]]
    r = sync(env)
    out = summary(r)
    assert (out["sgts"], out["removed_sgt_nodes"], out["kept_deleted_sgts"]) == (kinds(unchanged=16, removed=2), 1, 1)
    assert out["egress_cells"] == kinds(unchanged=1, removed=1)
    assert "SGTs: 0 added, 0 updated, 16 unchanged, 2 removed" in r.stderr
    assert "SGT nodes: 1 removed (ISE deleted them and nothing refers to them), 1 kept marked deleted" in r.stderr
    sgts = sgt_rows(cli_store)
    assert 41 not in sgts
    assert (sgts[40]["name"], sgts[40]["id"]) == ("Lab", None)
    assert sgts[40]["deleted"] is not None


def test_wrong_password_is_exit_5_and_changes_nothing(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    ids = _lab_policy(ers)
    env = env_for(ers, pki)
    summary(sync(env))
    before = graph(cli_store)
    del ers.state.objects["egressmatrixcell"][ids["cell"]]  # a deletion the failed sync must not apply
    r = sync({**env, "CLARION_ISE_ERS_PASSWORD": "Wrong-Pass-9"})
    assert r.exit_code == EXIT_AUTH
    assert "refused the account 'ersadmin' (HTTP 401)" in r.stderr
    assert "ERS Admin or ERS Operator" in r.stderr
    assert "nothing in the graph was changed" in r.stderr
    assert "Wrong-Pass-9" not in r.output
    assert r.stdout == ""
    assert graph(cli_store) == before


def test_malformed_reply_names_where_and_changes_nothing(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    ids = _lab_policy(ers)
    env = env_for(ers, pki)
    summary(sync(env))
    before = graph(cli_store)
    ers.state.objects["sgt"][ids["printers"]]["value"] = "forty-one"  # ISE never sends this: a broken reply
    del ers.state.objects["sgacl"][ids["web"]]
    r = sync(env)
    assert r.exit_code == EXIT_MALFORMED
    assert "malformed ERS response" in r.stderr
    assert f"/ers/config/sgt/{ids['printers']}" in r.stderr
    assert "field 'value' missing or not int: 'forty-one'" in r.stderr
    assert graph(cli_store) == before


def test_untrusted_certificate_is_exit_4(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    env = env_for(ers, pki)
    del env["CLARION_ISE_CA_FILE"]  # the system CAs do not know the fake ISE's CA
    r = sync(env)
    assert r.exit_code == EXIT_TLS
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr
    assert "--ca-file" in r.stderr
    assert sgacl_names(cli_store) == set()


def test_a_ca_file_that_is_not_pem_is_a_settings_error(ers: ERSServer, pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    r = sync(env_for(ers, pki, CLARION_ISE_CA_FILE=str(junk)))
    assert r.exit_code == EXIT_SETTINGS
    assert f"CA bundle {junk}: cannot be loaded" in r.stderr
    assert ers.state.requests == []


def test_insecure_works_but_warns_loudly(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    env = env_for(ers, pki, CLARION_ISE_CA_FILE="")  # empty is unset
    r = sync(env, "--insecure", "--quiet")
    assert summary(r)["sgts"]["read"] == 16
    assert "WARNING: --insecure: ISE's certificate is NOT verified" in r.stderr
    both = sync(env_for(ers, pki), "--insecure")
    assert both.exit_code == 2
    assert "not both" in both.stderr


def test_unreachable_host_is_exit_3(pki: Pki, cli_store: FalkorDBStore) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"CLARION_ISE_HOST": "127.0.0.1", "CLARION_ISE_ERS_PORT": str(port), "CLARION_ISE_ERS_USER": "u",
           "CLARION_ISE_ERS_PASSWORD": "p", "CLARION_ISE_CA_FILE": str(pki.ca_cert)}  # fmt: skip
    r = sync(env, "--timeout", "5")
    assert r.exit_code == EXIT_UNREACHABLE
    assert f"cannot reach ISE ERS at https://127.0.0.1:{port}" in r.stderr
    assert "is ERS enabled" in r.stderr


def test_slow_ise_is_a_timeout_not_a_hang(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    ers.state.delay_s = 2.0
    r = sync(env_for(ers, pki), "--timeout", "1")
    assert r.exit_code == EXIT_UNREACHABLE
    assert "did not answer within 1 s (3 tries) while reading Security Groups (sgt)" in r.stderr
    assert sgacl_names(cli_store) == set()


def test_an_ers_operator_account_is_enough(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore) -> None:
    env = env_for(ers, pki, CLARION_ISE_ERS_USER=OPERATOR[0], CLARION_ISE_ERS_PASSWORD=OPERATOR[1])
    assert summary(sync(env, "--concurrency", "2"))["sgts"]["read"] == 16
    assert len(sgt_rows(cli_store)) == 17  # ISE's 16 and ANY (named by the ANY-ANY cell)


def test_403_names_the_roles_and_ers_switch() -> None:
    from clarion.sources.ers import ERSConfig
    from clarion.sources.ers_models import error_for

    config = ERSConfig("https://ise.corp.local:9060", "clarion-ers", "x")
    failure = classify(error_for(403, "GET", "/ers/config/sgt", None), config, "reading Security Groups (sgt)")
    assert failure.code == EXIT_AUTH
    assert "HTTP 403" in str(failure)
    assert "ERS Read/Write" in str(failure)
    assert "ERS Admin/ERS Operator role" in str(failure)


def test_settings_errors_name_the_variables(tmp_path: Path, pki: Pki) -> None:
    r = sync({"CLARION_ISE_HOST": "ise.corp.local", "CLARION_ISE_ERS_USER": "u", "CLARION_ISE_ERS_PASSWORD": ""})
    assert r.exit_code == EXIT_SETTINGS
    assert "missing password (CLARION_ISE_ERS_PASSWORD)" in r.stderr
    bad_host = {"CLARION_ISE_ERS_USER": "u", "CLARION_ISE_ERS_PASSWORD": "p"}
    r = sync(bad_host, "--host", "https://ise.corp.local:9060/ers")
    assert r.exit_code == EXIT_SETTINGS
    assert "is not a host name or IP address" in r.stderr
    r = sync(bad_host, "--host", "ise", "--page-size", "500")
    assert r.exit_code == 2
    assert "'--page-size'" in r.stderr
    assert "less than or equal to 100" in r.stderr
    r = sync({**bad_host, "CLARION_ISE_PAGE_SIZE": "0"}, "--host", "ise")
    assert r.exit_code == EXIT_SETTINGS
    assert "page_size" in r.stderr
    assert "--password" not in CliRunner().invoke(app, ["ise", "sync", "--help"]).stdout


def test_settings_file(ers: ERSServer, pki: Pki, cli_store: FalkorDBStore, tmp_path: Path) -> None:
    settings = tmp_path / "ise.env"
    lines = [f"{k}={v}" for k, v in env_for(ers, pki).items()]
    settings.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["ise", "sync", "--env-file", str(settings), "--quiet"], env={})
    assert summary(r)["egress_cells"]["read"] == 1
    assert r.stderr == ""


def test_store_problems_are_reported_not_raised(ers: ERSServer, pki: Pki) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    r = sync(env_for(ers, pki, CLARION_GRAPH_URL="ftp://graph.corp.local"))
    assert r.exit_code == EXIT_SETTINGS
    assert "unknown scheme" in r.stderr
    assert ers.state.requests == []  # refused before asking ISE anything
    r = sync(env_for(ers, pki, CLARION_GRAPH_URL=f"falkordb://127.0.0.1:{closed}"))
    assert r.exit_code == 1
    assert f"cannot open the graph store (falkordb://127.0.0.1:{closed}): Error 111" in r.stderr
    assert "Traceback" not in r.output


def test_base_url() -> None:
    assert base_url("ise-pan.corp.local", 9060) == "https://ise-pan.corp.local:9060"
    assert base_url("10.1.2.3", 443) == "https://10.1.2.3:443"
    assert base_url("[fd00::5]", 9060) == "https://[fd00::5]:9060"
    for bad in ("", "ise:9060", "https://ise", "ise/ers", "-ise", "a" * 254):
        with pytest.raises(ValueError, match="not a host name"):
            base_url(bad, 9060)
