// params: groups, ts
// TrustSec security groups as ISE defines them: the SGT number gets its name (ISE is the authority
// for names, so it overwrites what a session or a default said).
UNWIND $groups AS g
MERGE (s:SGT {value: g.value})
ON CREATE SET s.first_seen = $ts, s.source = 'ise'
SET s.name = g.name,
    s.description = g.description,
    s.ise_id = g.ise_id,
    s.name_source = 'ise'
RETURN count(*) AS groups
