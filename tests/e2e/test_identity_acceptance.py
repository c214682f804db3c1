"""Issue 4's acceptance, with real parts: agents' flows, the fake ISE's sessions over pxGrid, the real Samba AD.

A synthetic campus is played as a user would run Clarion: each switch's agent POSTs its EdgeGraphs through the real
``Sender``; the pxGrid service bulk-downloads the campus's sessions from the fake ISE node, then streams more (MAB
sessions, quarantined re-authentications) and posts them with an identity token to the real uvicorn server; the
campus's users and nested groups live in a real Samba DC and are synced over LDAPS. GraphQL must then show each
device with its user, its AD groups (direct and nested, from Samba) and its SGT named by ISE, and the policy matrix
must hold exactly the campus's traffic under real SGTs.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ldap3.protocol.formatters.formatters import format_sid  # type: ignore[import-untyped]

from clarion.api.app import create_app
from clarion.identity.directory import sync_and_merge
from clarion.server import BackgroundServer
from clarion.sources.ad import ADConfig
from clarion.sources.pxgrid.service import PxGridService
from clarion.sources.pxgrid.sink import HttpSink
from clarion.store.falkordb_store import FalkorDBStore
from clarion.synth import Campus, CampusSpec, generate_campus
from clarion.synth.model import SynthSession
from clarion_edge import wire
from clarion_edge.sender import Sender
from tests.e2e.conftest import READER_TOKEN, Api, make_settings
from tests.e2e.identity_world import (
    KEEP,
    expected_groups,
    expected_matrix,
    flow_totals,
    ise_security_groups,
    ise_session,
    netflow_sgts,
    samba_started_by_this_process,
    seed_directory,
)
from tests.fakes.pxgrid import FakePxGrid
from tests.fakes.pxgrid.certs import make_pki
from tests.fakes.pxgrid.harness import get_status, settings_for, streaming, wait_for
from tests.integration.samba_ad import LDAPS_URL, SambaDC, add_user, samba_dc

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
__all__ = ["samba_dc"]  # the session fixture, imported so pytest sees it here

IDENTITY_TOKEN = "identity-pxgrid-token-0123456789"
SVC_PASSWORD = "Campus-Svc!2024-pass"
QUARANTINED = 255

SAMPLE = 25

DEVICE = """query($mac: String!) { device(mac: $mac) { mac sgt
  identity { user { username displayName } adGroups { sid name via depth }
    sgt { value name source } sgts { value source until } sessionState }
  outbound { bytes } } }"""
USER = """query($name: String!) { user(name: $name) { username displayName sid devices { mac } } }"""
MATRIX = "{ policyMatrix { sgts { value name } cells { srcSgt dstSgt bytes } } stats { bytes } }"


@dataclass
class World:
    api: Api
    campus: Campus
    graphs: list[wire.EdgeGraph]
    bulk: list[SynthSession]  # the campus sessions ISE held before the service connected
    streamed: list[tuple[SynthSession, int | None]]  # (session, its SGT or KEEP) published while streaming
    samba_groups: dict[str, str]  # AD group name -> objectSid, as Samba assigned them


@pytest.fixture
def dc(request: pytest.FixtureRequest) -> SambaDC:
    """The session's Samba DC (skips, saying why, where Samba cannot run); reused when another module started it."""
    if samba_started_by_this_process():
        return SambaDC(Path("/nonexistent"))  # admin() only needs the listening DC
    started: SambaDC = request.getfixturevalue("samba_dc")
    return started


@pytest.fixture
def world(store: FalkorDBStore, dc: SambaDC, tmp_path: Path) -> Iterator[World]:
    campus = generate_campus(CampusSpec(seed=23, switches=3, devices=240, days=1))
    graphs = list(campus.edge_graphs(agent_id_prefix="edge-"))
    agents = sorted({g.agent_id for g in graphs})
    agent_tokens = {a: f"agent-{a}-token-0123456789" for a in agents}
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'identity = ["{IDENTITY_TOKEN}"]\n[agents]\n' + "".join(f'"{a}" = "{t}"\n' for a, t in agent_tokens.items())
    )
    settings = make_settings(agent_tokens="", tokens_file=tokens)
    with BackgroundServer(create_app(settings, store)) as server:
        api = Api(server.url, store, settings)
        send_as_agents(server.url, graphs, agent_tokens)
        bulk, streamed = feed_pxgrid(server.url, campus, tmp_path)
        yield World(api, campus, graphs, bulk, streamed, sync_samba(dc, store, campus))


def send_as_agents(url: str, graphs: list[wire.EdgeGraph], tokens: dict[str, str]) -> None:
    """One real Sender per agent, all agents at once (as the demo drives them); every batch must be acknowledged."""
    per_agent: dict[str, list[wire.EdgeGraph]] = defaultdict(list)
    for g in graphs:
        per_agent[g.agent_id].append(g)

    def agent(agent_id: str) -> list[str]:
        with Sender(url, tokens[agent_id], timeout=120, retries=5) as sender:
            return [sender.send(g).outcome for g in per_agent[agent_id]]

    with ThreadPoolExecutor(max_workers=len(per_agent)) as pool:
        outcomes = [o for out in pool.map(agent, per_agent) for o in out]
    assert outcomes == ["applied"] * len(graphs)


def feed_pxgrid(
    url: str, campus: Campus, tmp_path: Path
) -> tuple[list[SynthSession], list[tuple[SynthSession, int | None]]]:
    """The fake ISE holds two thirds of the 802.1X sessions; the rest, the MAB sessions and a few quarantines
    (a later re-authentication with SGT 255) arrive over the WebSocket once the service streams."""
    names = {s.value: s.name for s in campus.sgts}
    pki = make_pki(tmp_path / "pki")
    fake = FakePxGrid(pki, auto_approve=True)
    fake.security_groups = ise_security_groups(campus)
    cut = len(campus.sessions) * 2 // 3
    bulk = campus.sessions[:cut]
    fake.add_sessions([ise_session(s, names) for s in bulk])
    quarantined = random.Random(5).sample(bulk, 3)
    streamed: list[tuple[SynthSession, int | None]] = [(s, KEEP) for s in campus.sessions[cut:] + campus.mab_sessions]
    streamed += [(s, QUARANTINED) for s in quarantined]
    fake.start()
    svc = PxGridService(settings_for(fake, pki), HttpSink(url, IDENTITY_TOKEN, backoff_s=0.05))
    svc.start()
    try:
        wait_for(lambda: streaming(svc)() and fake.subscribed() == 1, timeout=60, what="bulk download, then streaming")
        assert get_status(svc)["counters"]["merged"] == len(bulk)
        for i in range(0, len(streamed), 40):
            batch = streamed[i : i + 40]
            raws = [
                ise_session(s, names) if v == KEEP else ise_session(s, names, ts_ms=s.start_ms + 3_600_000, sgt=v)
                for s, v in batch
            ]
            assert fake.publish_sessions(raws) == 1
        total = len(bulk) + len(streamed)
        wait_for(lambda: get_status(svc)["counters"]["merged"] == total, timeout=60, what=f"{total} sessions merged")
        assert get_status(svc)["counters"]["malformed"] == 0
    finally:
        svc.stop()
        fake.stop()
    return bulk, streamed


def sync_samba(dc: SambaDC, store: FalkorDBStore, campus: Campus) -> dict[str, str]:
    """Seed Samba with the campus's directory, then run Clarion's AD sync over LDAPS into the graph."""
    conn = dc.admin()
    try:
        add_user(conn, "campus-svc", password=SVC_PASSWORD)
        seed_directory(conn, campus)
        conn.search("DC=corp,DC=local", "(objectClass=group)", attributes=["name", "objectSid"])
        sids = {str(e["name"]): format_sid(e["objectSid"].raw_values[0]) for e in conn.entries}
    finally:
        conn.unbind()
    config = ADConfig(url=LDAPS_URL, bind_user="campus-svc@corp.local", password=SVC_PASSWORD, verify_tls=False)
    result = sync_and_merge(store, config)
    assert result.full
    return sids


def graphql(w: World, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    with httpx.Client(base_url=w.api.url, headers={"Authorization": f"Bearer {READER_TOKEN}"}, timeout=60) as c:
        r = c.post("/graphql", json={"query": query, "variables": variables or {}})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def current_sgts(w: World) -> dict[str, int]:
    """Each node's SGT now: ISE's (the newest session carrying one) over what the switches exported."""
    sgt_of = netflow_sgts(w.graphs)
    for s in w.bulk:
        if s.sgt is not None:
            sgt_of[s.mac] = s.sgt
    for s, override in w.streamed:
        value = s.sgt if override == KEEP else override
        if value is not None:
            sgt_of[s.mac] = value
    return sgt_of


def test_campus_identity_end_to_end(world: World) -> None:
    """One campus played once (Samba's directory is per session): device identities, then the policy matrix."""
    check_devices(world)
    check_policy_matrix(world)


def check_devices(w: World) -> None:
    campus = w.campus
    names = {s.value: s.name for s in campus.sgts}
    users = {u.username: u for u in campus.users}
    sgt_of = current_sgts(w)
    netflow = netflow_sgts(w.graphs)
    _, sent = flow_totals(w.graphs)
    talkers = {uid for g in w.graphs for e in g.edges if isinstance(e, wire.FlowsTo) for uid in (e.src, e.dst)}
    dot1x = [s for s in campus.sessions if s.mac in talkers]
    assert len(dot1x) >= SAMPLE
    quarantined = {s.mac for s, v in w.streamed if v == QUARANTINED}
    sample = random.Random(1).sample(dot1x, SAMPLE) + [s for s in dot1x if s.mac in quarantined]
    devices_of: dict[str, set[str]] = defaultdict(set)
    for s in campus.sessions:
        devices_of[s.user].add(s.mac)
    nested_seen = 0
    for s in sample:
        device = graphql(w, DEVICE, {"mac": s.mac.upper()})["device"]
        assert device is not None, s.mac
        ident = device["identity"]
        user = users[s.user]
        assert ident["user"] == {"username": s.user, "displayName": user.display_name}
        groups = {g["name"]: (g["via"], g["depth"]) for g in ident["adGroups"]}
        assert groups == expected_groups(user), s.user
        assert {g["name"]: g["sid"] for g in ident["adGroups"]} == {n: w.samba_groups[n] for n in groups}
        nested_seen += sum(1 for via, depth in groups.values() if via == "NESTED" and depth >= 3)
        value = sgt_of.get(s.mac)
        if value is None:
            assert ident["sgt"] is None
            assert device["sgt"] is None
        else:
            ise_value = QUARANTINED if s.mac in quarantined else s.sgt
            # when ISE and the switch vouch for the same SGT, the newer confirmation names the source
            sources = {src for src, v in (("ise", ise_value), ("netflow", netflow.get(s.mac))) if v == value}
            sgt = ident["sgt"]
            assert (sgt["value"], sgt["name"]) == (value, names[value]), s.mac
            assert sgt["source"] in sources, (s.mac, sgt, sources)
            assert device["sgt"] == value
            if ise_value is not None:
                assert {"value": ise_value, "source": "ise", "until": None} in ident["sgts"], (s.mac, ident["sgts"])
        assert ident["sessionState"] == "STARTED"
        assert sum(o["bytes"] for o in device["outbound"]) == sent.get(s.mac, 0)
        u = graphql(w, USER, {"name": f"CORP\\{s.user}"})["user"]
        assert (u["username"], u["displayName"]) == (s.user, user.display_name)
        assert {d["mac"] for d in u["devices"]} == devices_of[s.user]
    assert nested_seen > 0  # some user reached a group two nestings up (e.g. Team-A ⊂ Engineering ⊂ Staff)


def check_policy_matrix(w: World) -> None:
    names = {s.value: s.name for s in w.campus.sgts}
    pairs, _ = flow_totals(w.graphs)
    expected = expected_matrix(pairs, current_sgts(w))
    data = graphql(w, MATRIX)
    matrix, stats = data["policyMatrix"], data["stats"]
    cells = {(c["srcSgt"], c["dstSgt"]): int(c["bytes"]) for c in matrix["cells"]}
    assert cells == expected
    assert sum(cells.values()) == int(stats["bytes"]) == w.campus.stats()["bytes"]
    values = {s["value"] for s in matrix["sgts"]}
    assert values == {v for cell in expected for v in cell}
    assert {s["value"]: s["name"] for s in matrix["sgts"]} == {v: names[v] for v in values}
    assert QUARANTINED in values  # streamed re-authentications moved their traffic
    real = values - {0}
    assert len(real) >= 8, values
