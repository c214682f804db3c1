// params: sgts, cells, complete, sync_id, ts
// Egress matrix cells as ISE publishes them outside a complete ERS read (pxGrid, POST /api/v1/identity):
// one EGRESS_POLICY per (source SGT, destination SGT) with its SGACL names in order. SGT values and cells
// are unique per list. Each cell is stamped with the write that last reported it; with `complete` the
// cells are the whole matrix and the ISE cells this write did not report are removed in the same
// statement, so a failure never leaves a half-replaced matrix. A complete ERS read uses
// merge/identity_trustsec_sync.
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
WHERE $complete AND e.source = 'ise' AND e.sync_id <> $sync_id
DELETE e
RETURN count(e) AS removed
