// params: users, sgts, switches, devices, assign, closes, tags, attach, bindings, ends
// One generation of identity sessions (ISE pxGrid, NAC file, API), applied atomically. Rows are
// pre-aggregated in Python: each MAC, IP, username, SGT value and switch appears once per list.
// "Current" device fields move only forward in time (d.identity_ts); history is kept as
// intervals (since / last_seen / until) on ASSIGNED_TO, HAS_SGT and IpBinding.
UNWIND $users AS u
MERGE (x:User {username: u.username})
ON CREATE SET x.first_seen = u.ts, x.source = u.source
SET x.login = coalesce(u.login, x.login),
    x.last_seen = CASE WHEN x.last_seen IS NULL OR x.last_seen < u.ts THEN u.ts ELSE x.last_seen END
WITH count(*) AS _users
UNWIND $sgts AS t
MERGE (s:SGT {value: t.value})
ON CREATE SET s.first_seen = t.ts, s.source = t.source
SET s.name = coalesce(s.name, t.name)
WITH count(*) AS _sgts
UNWIND $switches AS w
MERGE (sw:Switch {switch_id: w.switch_id})
ON CREATE SET sw.first_seen = w.ts, sw.source = w.source, sw.mgmt_ip = w.mgmt_ip
SET sw.last_seen = CASE WHEN sw.last_seen IS NULL OR sw.last_seen < w.ts THEN w.ts ELSE sw.last_seen END
WITH count(*) AS _switches
UNWIND $devices AS r
MERGE (d:Device {uid: r.mac})
ON CREATE SET d.first_seen = r.ts, d.kind = 'mac', d.mac = r.mac, d.source = r.source, d.local = true
WITH r, d, coalesce(d.identity_ts, -1) <= r.ts AS newer
SET d.last_seen = CASE WHEN d.last_seen IS NULL OR d.last_seen < r.ts THEN r.ts ELSE d.last_seen END,
    d.identity_ts = CASE WHEN newer THEN r.ts ELSE d.identity_ts END,
    d.session_state = CASE WHEN newer THEN r.state ELSE d.session_state END,
    d.identity_source = CASE WHEN newer THEN r.source ELSE d.identity_source END,
    d.ip = CASE WHEN newer AND r.ip IS NOT NULL THEN r.ip ELSE d.ip END,
    d.profile = CASE WHEN newer AND r.profile IS NOT NULL THEN r.profile ELSE d.profile END,
    d.profile_source = CASE WHEN newer AND r.profile IS NOT NULL THEN r.source ELSE d.profile_source END,
    d.ise_groups = CASE WHEN newer AND size(r.groups) > 0 THEN r.groups ELSE d.ise_groups END,
    d.hostname = CASE WHEN newer AND r.hostname IS NOT NULL THEN r.hostname ELSE d.hostname END
WITH count(*) AS _devices
UNWIND $closes AS c
MATCH (d:Device {uid: c.mac})-[o:ASSIGNED_TO]->(other:User)
WHERE other.username <> c.keep AND o.until IS NULL AND o.last_seen <= c.ts
SET o.until = c.ts
WITH count(*) AS _closed
UNWIND $assign AS a
MATCH (d:Device {uid: a.mac})
MATCH (u:User {username: a.username})
MERGE (d)-[r:ASSIGNED_TO]->(u)
ON CREATE SET r.since = a.ts, r.source = a.source
WITH a, r, coalesce(r.last_seen, -1) AS prev
SET r.until = CASE WHEN a.ts < prev THEN r.until WHEN a.end THEN a.ts ELSE null END,
    r.source = CASE WHEN a.ts >= prev THEN a.source ELSE r.source END,
    r.last_seen = CASE WHEN a.ts > prev THEN a.ts ELSE prev END
WITH count(*) AS _assign
UNWIND $tags AS t
MATCH (d:Device {uid: t.mac})-[o:HAS_SGT]->(x:SGT)
WHERE o.source = t.source AND x.value <> t.sgt AND o.until IS NULL AND o.last_seen <= t.ts
SET o.until = t.ts
WITH count(*) AS _retagged
UNWIND $tags AS t
MATCH (d:Device {uid: t.mac})
MATCH (s:SGT {value: t.sgt})
MERGE (d)-[h:HAS_SGT {source: t.source}]->(s)
ON CREATE SET h.since = t.ts
WITH t, d, h, coalesce(h.last_seen, -1) AS prev
SET h.until = CASE WHEN t.ts >= prev THEN null ELSE h.until END,
    h.last_seen = CASE WHEN t.ts > prev THEN t.ts ELSE prev END,
    d.sgt = CASE WHEN d.identity_ts = t.ts THEN t.sgt ELSE d.sgt END
WITH count(*) AS _tags
UNWIND $attach AS c
MATCH (d:Device {uid: c.mac})
MATCH (sw:Switch {switch_id: c.switch_id})
MERGE (d)-[r:CONNECTED_TO]->(sw)
ON CREATE SET r.first_seen = c.ts, r.source = c.source
WITH c, d, r, coalesce(r.last_seen, -1) AS prev
SET r.interface = CASE WHEN c.ts >= prev AND c.interface IS NOT NULL THEN c.interface ELSE r.interface END,
    r.vlan = CASE WHEN c.ts >= prev AND c.vlan IS NOT NULL THEN c.vlan ELSE r.vlan END,
    r.last_seen = CASE WHEN c.ts > prev THEN c.ts ELSE prev END,
    d.switch_id = CASE WHEN d.identity_ts = c.ts THEN c.switch_id ELSE d.switch_id END,
    d.interface = CASE WHEN d.identity_ts = c.ts AND c.interface IS NOT NULL THEN c.interface ELSE d.interface END,
    d.vlan = CASE WHEN d.identity_ts = c.ts AND c.vlan IS NOT NULL THEN c.vlan ELSE d.vlan END
WITH count(*) AS _attach
UNWIND $bindings AS b
MATCH (o:IpBinding {ip: b.ip})
WHERE o.open = true AND o.mac <> b.mac AND o.last_seen <= b.ts
SET o.open = false, o.until = b.ts
WITH count(*) AS _superseded
UNWIND $bindings AS b
OPTIONAL MATCH (c:IpBinding {ip: b.ip, mac: b.mac, open: false})
WHERE c.since <= b.ts AND c.until >= b.ts
WITH b, count(c) AS covered
WHERE covered = 0
MATCH (d:Device {uid: b.mac})
MERGE (e:IpBinding {ip: b.ip, mac: b.mac, open: true})
ON CREATE SET e.since = b.ts, e.source = b.source
MERGE (d)-[:HAD_IP]->(e)
SET e.last_seen = CASE WHEN e.last_seen IS NULL OR e.last_seen < b.last THEN b.last ELSE e.last_seen END
WITH count(*) AS _bindings
UNWIND $ends AS b
MATCH (e:IpBinding {ip: b.ip, mac: b.mac, open: true})
WHERE e.since <= b.ts
SET e.open = false, e.until = b.ts,
    e.last_seen = CASE WHEN e.last_seen < b.ts THEN b.ts ELSE e.last_seen END
WITH count(*) AS _ended
RETURN _ended AS ended
