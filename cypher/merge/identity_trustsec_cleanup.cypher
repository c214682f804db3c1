// params: sync_id, ts, any
// After a COMPLETE ERS read was merged (security groups, SGACLs and the matrix, each stamped with this
// sync): what ISE defined before and no longer lists was deleted in ISE. SGACLs go. An SGT definition
// goes too, unless something still refers to the SGT (devices tagged with it): then the node stays,
// marked with when ISE's definition disappeared, so what carries that tag keeps its meaning. ANY is
// never listed by ERS and is left alone; SGTs ISE never defined (seen only in traffic) are not touched.
// OPTIONAL MATCH keeps one row when nothing matched, so the counts always come back.
MATCH (x:Sgacl)
WHERE x.source = 'ise' AND coalesce(x.ise_sync, '') <> $sync_id
DETACH DELETE x
WITH count(*) AS removed_sgacls
OPTIONAL MATCH (s:SGT)
WHERE s.name_source = 'ise' AND s.value <> $any AND coalesce(s.ise_sync, '') <> $sync_id
  AND s.ise_deleted_at IS NULL
SET s.ise_deleted_at = $ts, s.ise_id = null
WITH removed_sgacls, count(s) AS deleted_sgts
OPTIONAL MATCH (o:SGT)
WHERE o.ise_deleted_at IS NOT NULL AND NOT (o)--()
DELETE o
RETURN removed_sgacls, deleted_sgts, count(o) AS removed_sgts
