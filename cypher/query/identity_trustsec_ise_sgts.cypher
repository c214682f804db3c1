// params: -
// The SGT definitions ISE currently owns in the graph (named by ISE, not marked deleted): what a complete
// ERS read is compared with to count added, updated and unchanged definitions.
MATCH (s:SGT)
WHERE s.name_source = 'ise' AND s.ise_deleted_at IS NULL
RETURN s.value AS value, s.name AS name, s.description AS description, s.ise_id AS ise_id
