// params: groups, ts
// TrustSec security groups as ISE publishes them one at a time (pxGrid securityGroupTopic): the SGT number
// gets its name (ISE is the authority for names, so it overwrites what a session or a default said). A
// group ISE lists again is no longer marked deleted. A complete ERS read uses merge/identity_trustsec_sync.
UNWIND $groups AS g
MERGE (s:SGT {value: g.value})
ON CREATE SET s.first_seen = $ts, s.source = 'ise'
SET s.name = g.name,
    s.description = g.description,
    s.ise_id = g.ise_id,
    s.name_source = 'ise',
    s.ise_since = coalesce(s.ise_since, $ts),
    s.ise_deleted_at = null
RETURN count(*) AS groups
