"""Benchmark: full AD sync of 10,000 users and 200 groups (nested 3 deep) from a real Samba AD DC.

Run as root with the Samba packages installed: ``.venv/bin/python tests/benchmarks/ad_sync.py [--runs 3]``.
Loading the directory is not timed (it takes minutes: Samba adds about 50-100 objects/s); use ``--workdir DIR``
to keep the loaded DC and reuse it next time. The sync (LDAPS, paged searches as a non-admin service account)
plus client-side transitive resolution is timed; the target is < 30 s. Then, as Administrator (tombstones need
that right), 100 users are created in a group and deleted, and an incremental sync from the mark taken before
is timed in a fresh process state (the CLI's case): it must report exactly those 100 deletions. The last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from the repository root

from ldap3.protocol.formatters.formatters import format_sid
from tests.integration.samba_ad import (
    ADMIN_PASSWORD,
    BASE_DN,
    LDAPS_URL,
    SambaDC,
    add_group,
    add_members,
    add_user,
    unavailable_reason,
)

from clarion.sources.ad import ADConfig, ADSync, transitive_groups

SVC_PASSWORD = "Svc-Clarion!2024"
LEVELS = (10, 40, 150)  # 200 groups: 10 top, 40 in the middle, 150 leaves; each group sits in one parent


def plan(users: int, seed: int = 7) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    """group -> parent group (None at the top), and user -> its direct groups (two leaves or middles)."""
    rng = random.Random(seed)
    names = [[f"G{level}-{i:03d}" for i in range(count)] for level, count in enumerate(LEVELS)]
    parent: dict[str, str | None] = dict.fromkeys(names[0])
    for level in (1, 2):
        for g in names[level]:
            parent[g] = rng.choice(names[level - 1])
    pool = names[1] + names[2]
    membership = {f"user{i:05d}": rng.sample(pool, 2) for i in range(users)}
    return parent, membership


def load(dc: SambaDC, users: int) -> float:
    start = time.monotonic()
    parent, membership = plan(users)
    conn = dc.admin()
    add_user(conn, "svc-clarion", password=SVC_PASSWORD)
    ou = f"OU=Bench,{BASE_DN}"
    conn.add(ou, ["top", "organizationalUnit"])
    group_dn = {g: add_group(conn, g, container=ou) for g in parent}
    members: dict[str, list[str]] = {g: [] for g in parent}
    for i, (name, groups) in enumerate(membership.items()):
        dn = add_user(conn, name, container=ou, mail=f"{name}@corp.local", display_name=name.title())
        for g in groups:
            members[g].append(dn)
        if i % 1000 == 999:
            print(f"  loaded {i + 1} users, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    for g, child_parent in parent.items():
        if child_parent:
            members[child_parent].append(group_dn[g])
    for g, dns in members.items():
        add_members(conn, group_dn[g], dns)
    conn.unbind()
    return time.monotonic() - start


def expected_closure(user: str, users: int) -> set[str]:
    parent, membership = plan(users)
    out: set[str] = set()
    for g in membership[user]:
        node: str | None = g
        while node:
            out.add(node)
            node = parent[node]
    return out | {"Domain Users", "Users"}


def incremental(dc: SambaDC) -> tuple[float, bool]:
    """Seconds of an incremental sync (no remembered state) that sees 100 deleted users; and whether it did."""
    admin = ADConfig(LDAPS_URL, "Administrator@corp.local", ADMIN_PASSWORD, verify_tls=False, timeout_s=120)
    mark = ADSync(admin).sync().mark
    conn = dc.admin()
    ou = f"OU=Bench,{BASE_DN}"
    temp = [add_user(conn, f"tmpdel-{i:03d}", container=ou) for i in range(100)]
    add_members(conn, f"CN=G2-000,{ou}", temp)
    sids = set()
    for dn in temp:
        conn.search(dn, "(objectClass=*)", attributes=["objectSid"])
        sids.add(format_sid(conn.response[0]["raw_attributes"]["objectSid"][0]))
        conn.delete(dn)
    conn.unbind()
    t0 = time.monotonic()
    delta = ADSync(admin).sync_from(mark)
    seconds = time.monotonic() - t0
    return seconds, delta.full_reason is None and {d.sid for d in delta.deleted} == sids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="keep the provisioned, loaded DC here and reuse it")
    args = ap.parse_args()
    reason = unavailable_reason()
    if reason:
        print(json.dumps({"benchmark": "ad_sync", "skipped": reason}))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clarion-ad-bench-"))
    marker = workdir / f"loaded-{args.users}"
    dc = SambaDC(workdir)
    load_s = None
    if not marker.exists():
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        dc.provision()
    dc.start()
    try:
        if not marker.exists():
            load_s = load(dc, args.users)
            marker.touch()
        config = ADConfig(LDAPS_URL, "svc-clarion@corp.local", SVC_PASSWORD, verify_tls=False, timeout_s=120)
        runs, sync_runs, closure_runs = [], [], []
        for _ in range(args.runs):
            t0 = time.monotonic()
            snapshot = ADSync(config).sync()
            t1 = time.monotonic()
            closure = transitive_groups(snapshot)
            t2 = time.monotonic()
            sync_runs.append(t1 - t0)
            closure_runs.append(t2 - t1)
            runs.append(t2 - t0)
        incremental_s, deleted_ok = incremental(dc)
        names = {g.sid: g.name for g in snapshot.groups}
        probe = next(u for u in snapshot.users if u.username == "user00042")
        got = {names[s] for s in closure[probe.sid]}
        bench_users = sum(1 for u in snapshot.users if u.username.startswith("user"))
        ok = got == expected_closure("user00042", args.users) and bench_users == args.users
    finally:
        dc.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "ad_sync",
        "users": len(snapshot.users),
        "groups": len(snapshot.groups),
        "computers": len(snapshot.computers),
        "runs_s": [round(r, 2) for r in runs],
        "median_s": round(statistics.median(runs), 2),
        "median_ldap_s": round(statistics.median(sync_runs), 2),
        "median_transitive_s": round(statistics.median(closure_runs), 3),
        "target_s": 30,
        "load_s": None if load_s is None else round(load_s, 1),
        "incremental_100_deletions_s": round(incremental_s, 2),
        "correct": ok and deleted_ok,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
