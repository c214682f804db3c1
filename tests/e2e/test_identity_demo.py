"""The synthetic campus's identity feed through the real API: users, nested AD groups and SGT names."""

from __future__ import annotations

import pytest

from clarion.identity import merge_directory
from clarion.identity.demo import directory_snapshot, identity_payload
from clarion.synth import CampusSpec, generate_campus
from clarion.synth.identity import GROUP_PARENTS
from tests.e2e.conftest import ADMIN_TOKEN, Api

pytestmark = pytest.mark.e2e

QUERY = """query($mac: String!) { device(mac: $mac) { identity {
  user { username displayName } adGroups { name via } sgt { value name source } endpointProfile iseGroups
} } }"""


def ancestors(group: str) -> set[str]:
    out, todo = set(), [group]
    while todo:
        for parent in GROUP_PARENTS[todo.pop()]:
            if parent not in out:
                out.add(parent)
                todo.append(parent)
    return out


def test_campus_identity_shows_in_graphql(api: Api) -> None:
    campus = generate_campus(CampusSpec(devices=300, switches=2, seed=11))
    body = identity_payload(campus)
    assert len(body["sessions"]) == len(campus.sessions) > 100
    with api.client(ADMIN_TOKEN) as c:
        r = c.post("/api/v1/identity", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["unresolved_sgt_names"] == []
    merge_directory(api.store, directory_snapshot(campus))

    users = {u.username: u for u in campus.users}
    names = {s.value: s.name for s in campus.sgts}
    checked = 0
    for s in campus.sessions[:25]:
        ident = api.graphql(QUERY, {"mac": s.mac})["data"]["device"]["identity"]
        user = users[s.user]
        assert ident["user"] == {"username": s.user, "displayName": user.display_name}
        direct = set(user.groups)
        nested = set().union(*(ancestors(g) for g in direct)) - direct
        assert {g["name"]: g["via"] for g in ident["adGroups"]} == {
            **dict.fromkeys(nested, "NESTED"),
            **dict.fromkeys(direct, "DIRECT"),
        }
        if s.sgt is not None:
            assert ident["sgt"] == {"value": s.sgt, "name": names[s.sgt], "source": "ise"}
        assert ident["endpointProfile"] == (s.profile or None)
        assert ident["iseGroups"] == list(user.groups)  # as pxGrid's UserGroup would report them
        checked += 1
    assert checked == 25
