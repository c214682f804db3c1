// params: users, sgts, switches, sessions, bindings, ends
// One generation of identity sessions (ISE pxGrid, NAC file, API), applied atomically. Rows are
// lists (compact parameters are what makes bulk merges fast) and pre-aggregated in Python: each
// MAC, IP, username, SGT value and switch appears once per list.
//   users:    [username, login, ts, source]          sgts:  [value, name, ts, source]
//   switches: [switch_id, mgmt_ip, ts, source]       bindings, ends: [ip, mac, ts, last_seen, source]
//   sessions: [mac, ts, source, state, ended, ip, profile, groups, hostname, username, sgt,
//              switch_id, interface, vlan]
// "Current" device fields move only forward in time (d.identity_ts); history is kept as intervals
// (since / last_seen / until) on ASSIGNED_TO, HAS_SGT and IpBinding. Batches may arrive out of order (the
// pxGrid sink keeps two requests in flight): an older event never overwrites a newer one, first_seen/since
// move back to it, and a user or SGT it brings is closed when a later one ("later") already superseded it.
UNWIND $users AS u
MERGE (x:User {username: u[0]})
ON CREATE SET x.first_seen = u[2], x.source = u[3]
SET x.login = CASE WHEN x.last_seen IS NULL OR x.last_seen <= u[2] THEN coalesce(u[1], x.login) ELSE x.login END,
    x.first_seen = CASE WHEN x.first_seen > u[2] THEN u[2] ELSE x.first_seen END,
    x.last_seen = CASE WHEN x.last_seen IS NULL OR x.last_seen < u[2] THEN u[2] ELSE x.last_seen END
WITH count(*) AS _users
UNWIND $sgts AS t
MERGE (s:SGT {value: t[0]})
ON CREATE SET s.first_seen = t[2], s.source = t[3]
SET s.name = coalesce(s.name, t[1])
WITH count(*) AS _sgts
UNWIND $switches AS w
MERGE (sw:Switch {switch_id: w[0]})
ON CREATE SET sw.first_seen = w[2], sw.source = w[3], sw.mgmt_ip = w[1]
SET sw.last_seen = CASE WHEN sw.last_seen IS NULL OR sw.last_seen < w[2] THEN w[2] ELSE sw.last_seen END,
    sw.first_seen = CASE WHEN sw.first_seen > w[2] THEN w[2] ELSE sw.first_seen END
WITH count(*) AS _switches
UNWIND $sessions AS r
MERGE (d:Device {uid: r[0]})
ON CREATE SET d.first_seen = r[1], d.kind = 'mac', d.mac = r[0], d.source = r[2], d.local = true
WITH r, d, coalesce(d.identity_ts, -1) <= r[1] AS newer
SET d.last_seen = CASE WHEN d.last_seen IS NULL OR d.last_seen < r[1] THEN r[1] ELSE d.last_seen END,
    d.first_seen = CASE WHEN d.first_seen IS NULL OR d.first_seen > r[1] THEN r[1] ELSE d.first_seen END,
    d.identity_ts = CASE WHEN newer THEN r[1] ELSE d.identity_ts END,
    d.session_state = CASE WHEN newer THEN r[3] ELSE d.session_state END,
    d.identity_source = CASE WHEN newer THEN r[2] ELSE d.identity_source END,
    d.ip = CASE WHEN newer AND r[5] IS NOT NULL THEN r[5] ELSE d.ip END,
    d.profile = CASE WHEN newer AND r[6] IS NOT NULL THEN r[6] ELSE d.profile END,
    d.profile_source = CASE WHEN newer AND r[6] IS NOT NULL THEN r[2] ELSE d.profile_source END,
    d.ise_groups = CASE WHEN newer AND size(r[7]) > 0 THEN r[7] ELSE d.ise_groups END,
    d.hostname = CASE WHEN newer AND r[8] IS NOT NULL THEN r[8] ELSE d.hostname END
WITH count(*) AS _devices
UNWIND $sessions AS r
MATCH (d:Device {uid: r[0]})-[o:ASSIGNED_TO]->(other:User)
WHERE other.username <> coalesce(r[9], '') AND coalesce(o.until, r[1] + 1) > r[1] AND o.last_seen <= r[1]
SET o.until = r[1]
WITH count(*) AS _closed
UNWIND $sessions AS r
WITH r WHERE r[9] IS NOT NULL
MATCH (d:Device {uid: r[0]})
MATCH (u:User {username: r[9]})
OPTIONAL MATCH (d)-[o:ASSIGNED_TO]->(other:User)
WHERE other.username <> r[9] AND (o.since > r[1] OR o.last_seen > r[1])
WITH r, d, u, min(CASE WHEN o.since > r[1] THEN o.since ELSE o.last_seen END) AS later
MERGE (d)-[a:ASSIGNED_TO]->(u)
ON CREATE SET a.since = r[1], a.source = r[2]
WITH r, a, later, coalesce(a.last_seen, -1) AS prev
SET a.until = CASE WHEN r[1] < prev THEN a.until WHEN r[4] THEN r[1] ELSE later END,
    a.since = CASE WHEN a.since > r[1] THEN r[1] ELSE a.since END,
    a.source = CASE WHEN r[1] >= prev THEN r[2] ELSE a.source END,
    a.last_seen = CASE WHEN r[1] > prev THEN r[1] ELSE prev END
WITH count(*) AS _assigned
UNWIND $sessions AS r
WITH r WHERE r[10] IS NOT NULL
MATCH (d:Device {uid: r[0]})-[o:HAS_SGT]->(x:SGT)
WHERE o.source = r[2] AND x.value <> r[10] AND coalesce(o.until, r[1] + 1) > r[1] AND o.last_seen <= r[1]
SET o.until = r[1]
WITH count(*) AS _retagged
UNWIND $sessions AS r
WITH r WHERE r[10] IS NOT NULL
MATCH (d:Device {uid: r[0]})
MATCH (s:SGT {value: r[10]})
OPTIONAL MATCH (d)-[o:HAS_SGT]->(x:SGT)
WHERE o.source = r[2] AND x.value <> r[10] AND (o.since > r[1] OR o.last_seen > r[1])
WITH r, d, s, min(CASE WHEN o.since > r[1] THEN o.since ELSE o.last_seen END) AS later
MERGE (d)-[h:HAS_SGT {source: r[2]}]->(s)
ON CREATE SET h.since = r[1]
WITH r, d, h, later, coalesce(h.last_seen, -1) AS prev
SET h.until = CASE WHEN r[1] >= prev THEN later ELSE h.until END,
    h.since = CASE WHEN h.since > r[1] THEN r[1] ELSE h.since END,
    h.last_seen = CASE WHEN r[1] > prev THEN r[1] ELSE prev END,
    d.sgt = CASE WHEN d.identity_ts = r[1] THEN r[10] ELSE d.sgt END
WITH count(*) AS _tagged
UNWIND $sessions AS r
WITH r WHERE r[11] IS NOT NULL
MATCH (d:Device {uid: r[0]})
MATCH (sw:Switch {switch_id: r[11]})
MERGE (d)-[c:CONNECTED_TO]->(sw)
ON CREATE SET c.first_seen = r[1], c.source = r[2]
WITH r, d, c, coalesce(c.last_seen, -1) AS prev
SET c.interface = CASE WHEN r[1] >= prev AND r[12] IS NOT NULL THEN r[12] ELSE c.interface END,
    c.first_seen = CASE WHEN c.first_seen > r[1] THEN r[1] ELSE c.first_seen END,
    c.vlan = CASE WHEN r[1] >= prev AND r[13] IS NOT NULL THEN r[13] ELSE c.vlan END,
    c.last_seen = CASE WHEN r[1] > prev THEN r[1] ELSE prev END,
    d.switch_id = CASE WHEN d.identity_ts = r[1] THEN r[11] ELSE d.switch_id END,
    d.interface = CASE WHEN d.identity_ts = r[1] AND r[12] IS NOT NULL THEN r[12] ELSE d.interface END,
    d.vlan = CASE WHEN d.identity_ts = r[1] AND r[13] IS NOT NULL THEN r[13] ELSE d.vlan END
WITH count(*) AS _attached
UNWIND $bindings AS b
MATCH (o:IpBinding {ip: b[0]})
WHERE o.open = true AND o.mac <> b[1] AND o.last_seen <= b[2]
SET o.open = false, o.until = b[2]
WITH count(*) AS _superseded
UNWIND $bindings AS b
OPTIONAL MATCH (c:IpBinding {ip: b[0], mac: b[1], open: false})
WHERE c.since <= b[2] AND c.until >= b[2]
WITH b, count(c) AS covered
WHERE covered = 0
MERGE (e:IpBinding {ip: b[0], mac: b[1], open: true})
ON CREATE SET e.since = b[2], e.source = b[4]
SET e.last_seen = CASE WHEN e.last_seen IS NULL OR e.last_seen < b[3] THEN b[3] ELSE e.last_seen END,
    e.since = CASE WHEN e.since > b[2] THEN b[2] ELSE e.since END
WITH count(*) AS _bound
UNWIND $ends AS b
MATCH (e:IpBinding {ip: b[0], mac: b[1], open: true})
WHERE e.since <= b[2]
SET e.open = false, e.until = b[2],
    e.last_seen = CASE WHEN e.last_seen < b[2] THEN b[2] ELSE e.last_seen END
WITH count(*) AS _ended
RETURN _ended AS ended
