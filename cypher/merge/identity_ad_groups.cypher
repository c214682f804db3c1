// params: groups, nesting, sync_id, ts
// AD groups by objectSid, then group nesting (child MEMBER_OF parent). Rows unique per SID and per
// (child, parent). Every group and AD-sourced edge is stamped with this sync; cleanup of what a full
// sync did not touch is a separate statement run only after every merge of the sync succeeded.
UNWIND $groups AS g
MERGE (x:ADGroup {sid: g.sid})
ON CREATE SET x.first_seen = $ts, x.source = 'ad'
SET x.name = g.name, x.dn = g.dn, x.description = g.description, x.ad_sync = $sync_id, x.last_seen = $ts
WITH count(*) AS _groups
UNWIND $nesting AS n
MERGE (p:ADGroup {sid: n.parent})
ON CREATE SET p.first_seen = $ts, p.source = 'ad'
SET p.ad_sync = $sync_id
WITH count(*) AS _parents
UNWIND $nesting AS n
MATCH (c:ADGroup {sid: n.child})
MATCH (p:ADGroup {sid: n.parent})
MERGE (c)-[m:MEMBER_OF]->(p)
ON CREATE SET m.since = $ts, m.source = 'ad'
SET m.ad_sync = $sync_id, m.last_seen = $ts
RETURN count(*) AS nesting
