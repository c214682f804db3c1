// params: sgts, cells, sync_id, ts
// The deployed egress matrix: one EGRESS_POLICY per (source SGT, destination SGT) with its SGACL names
// in order. SGT values and cells are unique per list. Each cell is stamped with the sync that last
// reported it; removing cells a complete sync did not report is a separate statement.
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
RETURN count(*) AS cells
