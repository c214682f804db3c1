"""``clarion import sessions FILE --server``: a NAC export through the real API into the graph, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clarion.cli import app
from tests.e2e.conftest import ADMIN_TOKEN, Api

pytestmark = pytest.mark.e2e

CSV = """mac,ips,user,sgt,switch,port,vlan,start,profile
AA-BB-CC-00-20-01,10.80.0.1,CORP\\frank,4,sw1,Gi1/0/1,10,2026-11-02T08:00:00Z,Windows11-Workstation
aabb.cc00.2002,10.80.0.2,,15,sw1,Gi1/0/2,20,2026-11-02T08:05:00Z,Apple-iPhone
"""


def test_import_sessions_through_the_server(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "nac.csv"
    path.write_text(CSV)
    r = CliRunner().invoke(app, ["import", "sessions", str(path), "--server", api.url, "--token", ADMIN_TOKEN])
    assert r.exit_code == 0, r.output
    q = """query($mac: String!) { device(mac: $mac) { identity {
      user { username source since } sgt { value source } endpointProfile ports { switchId interface vlan } } } }"""
    one = api.graphql(q, {"mac": "aa:bb:cc:00:20:01"})["data"]["device"]["identity"]
    assert one["user"] == {"username": "frank", "source": "file", "since": 1_793_606_400_000}
    assert one["sgt"] == {"value": 4, "source": "file"}
    assert one["ports"] == [{"switchId": "sw1", "interface": "Gi1/0/1", "vlan": 10}]
    two = api.graphql(q, {"mac": "aa:bb:cc:00:20:02"})["data"]["device"]["identity"]
    assert (two["user"], two["endpointProfile"], two["sgt"]["value"]) == (None, "Apple-iPhone", 15)


def test_a_bad_row_rejects_the_whole_file(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(CSV + "not-a-mac,10.80.0.3,,,,,,,\n")
    r = CliRunner().invoke(app, ["import", "sessions", str(path), "--server", api.url, "--token", ADMIN_TOKEN])
    assert r.exit_code == 2
    assert "line 4" in r.output
    assert "nothing imported" in r.output
    assert api.graphql("{ stats { devices } }")["data"]["stats"]["devices"] == 0


def test_a_refused_token_is_a_clear_error(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "nac.csv"
    path.write_text(CSV)
    r = CliRunner().invoke(app, ["import", "sessions", str(path), "--server", api.url, "--token", "x" * 20])
    assert r.exit_code == 1
    assert "401" in r.output
