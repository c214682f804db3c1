// params: groups, acls, sgts, cells, sync_id, ts, any
// One COMPLETE ERS read (security groups, SGACLs, the whole egress matrix) applied in ONE statement, so
// the graph holds all of it or none of it (one transaction on Neo4j; FalkorDB runs a query atomically):
// a store failing part way leaves the previous policy, never a mix, and the next run converges.
// First the merges, each object stamped with this sync; then what ISE defined before and no longer lists:
// matrix cells and SGACLs go; an SGT definition goes too unless something still refers to the SGT
// (devices tagged with it): then the node stays, marked with when ISE's definition disappeared. ANY is
// never listed by ERS and is left alone; SGTs ISE never defined (seen only in traffic) are not touched.
// Rows are unique per key. OPTIONAL MATCH keeps one row when nothing matched, so the counts always come back.
UNWIND $groups AS g
MERGE (s:SGT {value: g.value})
ON CREATE SET s.first_seen = $ts, s.source = 'ise'
SET s.name = g.name, s.description = g.description, s.ise_id = g.ise_id, s.name_source = 'ise',
    s.ise_since = coalesce(s.ise_since, $ts), s.ise_sync = $sync_id, s.ise_deleted_at = null
WITH count(*) AS _groups
UNWIND $acls AS a
MERGE (x:Sgacl {name: a.name})
ON CREATE SET x.first_seen = $ts, x.source = 'ise'
SET x.aces = a.aces, x.ise_id = a.ise_id, x.ip_version = a.ip_version, x.description = a.description,
    x.last_seen = $ts, x.ise_sync = $sync_id
WITH count(*) AS _acls
UNWIND $sgts AS v
MERGE (s:SGT {value: v})
ON CREATE SET s.first_seen = $ts, s.source = 'ise'
WITH count(*) AS _sgts
UNWIND $cells AS c
MATCH (a:SGT {value: c.src})
MATCH (b:SGT {value: c.dst})
MERGE (a)-[e:EGRESS_POLICY]->(b)
ON CREATE SET e.since = $ts, e.source = 'ise'
SET e.sgacls = c.sgacls, e.default_rule = c.default_rule, e.status = c.status, e.ise_id = c.ise_id,
    e.sync_id = $sync_id, e.last_seen = $ts
WITH count(*) AS _cells
OPTIONAL MATCH (:SGT)-[e:EGRESS_POLICY]->(:SGT)
WHERE e.source = 'ise' AND e.sync_id <> $sync_id
DELETE e
WITH count(e) AS removed_cells
OPTIONAL MATCH (x:Sgacl)
WHERE x.source = 'ise' AND coalesce(x.ise_sync, '') <> $sync_id
DETACH DELETE x
WITH removed_cells, count(x) AS removed_sgacls
OPTIONAL MATCH (s:SGT)
WHERE s.name_source = 'ise' AND s.value <> $any AND coalesce(s.ise_sync, '') <> $sync_id
  AND s.ise_deleted_at IS NULL
SET s.ise_deleted_at = $ts, s.ise_id = null
WITH removed_cells, removed_sgacls, count(s) AS deleted_sgts
OPTIONAL MATCH (o:SGT)
WHERE o.ise_deleted_at IS NOT NULL AND NOT (o)--()
DELETE o
WITH removed_cells, removed_sgacls, deleted_sgts, count(o) AS removed_sgts
OPTIONAL MATCH (k:SGT)
WHERE k.ise_deleted_at IS NOT NULL
RETURN removed_cells, removed_sgacls, deleted_sgts, removed_sgts, count(k) AS kept_deleted_sgts
