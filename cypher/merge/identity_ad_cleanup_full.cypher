// params: sync_id
// After a FULL AD sync committed: remove what AD owns and this sync did not touch. AD-sourced
// MEMBER_OF edges and groups go; users keep their node (sessions may still point at them) but lose
// their AD attributes, and are removed only when nothing else refers to them.
MATCH (:User)-[m:MEMBER_OF]->(:ADGroup)
WHERE m.source = 'ad' AND m.ad_sync <> $sync_id
DELETE m
WITH count(*) AS _members
MATCH (:ADGroup)-[n:MEMBER_OF]->(:ADGroup)
WHERE n.source = 'ad' AND n.ad_sync <> $sync_id
DELETE n
WITH count(*) AS _nesting
MATCH (g:ADGroup)
WHERE g.ad_sync <> $sync_id
DETACH DELETE g
WITH count(*) AS _groups
MATCH (u:User)
WHERE u.ad_sync IS NOT NULL AND u.ad_sync <> $sync_id
SET u.sid = null, u.dn = null, u.upn = null, u.enabled = null, u.ad_sync = null, u.ad_removed = true
WITH count(*) AS _users
MATCH (u:User)
WHERE u.ad_removed = true AND u.source = 'ad' AND NOT (u)--()
DELETE u
RETURN count(*) AS done
