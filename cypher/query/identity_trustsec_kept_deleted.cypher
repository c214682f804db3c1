// params: -
// SGTs ISE deleted that the graph keeps (marked ise_deleted_at) because devices still carry the tag.
MATCH (s:SGT)
WHERE s.ise_deleted_at IS NOT NULL
RETURN count(s) AS kept
