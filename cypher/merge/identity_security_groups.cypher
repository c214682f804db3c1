// params: groups, sync_id, ts
// TrustSec security groups as ISE defines them: the SGT number gets its name (ISE is the authority
// for names, so it overwrites what a session or a default said). `sync_id` is the complete ERS read
// that listed the group (null for a single pxGrid update): the cleanup after that read keys on it.
// A group ISE lists again is no longer marked deleted.
UNWIND $groups AS g
MERGE (s:SGT {value: g.value})
ON CREATE SET s.first_seen = $ts, s.source = 'ise'
SET s.name = g.name,
    s.description = g.description,
    s.ise_id = g.ise_id,
    s.name_source = 'ise',
    s.ise_since = coalesce(s.ise_since, $ts),
    s.ise_sync = coalesce($sync_id, s.ise_sync),
    s.ise_deleted_at = null
RETURN count(*) AS groups
