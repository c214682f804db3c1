// params: values, names, ts
// ISE published that it deleted these (pxGrid TrustSec topics). SGACLs go. The SGTs lose their ISE
// matrix cells (ISE cannot keep a cell for a group it deleted) and go, or stay marked with the time of
// the delete while something (devices tagged with them) still refers to them.
UNWIND $names AS name
MATCH (x:Sgacl {name: name})
DETACH DELETE x
WITH count(*) AS _acls
MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT)
WHERE e.source = 'ise' AND (a.value IN $values OR b.value IN $values)
DELETE e
WITH count(*) AS _cells
UNWIND $values AS v
MATCH (s:SGT {value: v})
WHERE s.ise_deleted_at IS NULL
SET s.ise_deleted_at = $ts, s.ise_id = null
WITH count(*) AS _retired
UNWIND $values AS v
MATCH (s:SGT {value: v})
WHERE NOT (s)--()
DELETE s
RETURN count(*) AS removed
