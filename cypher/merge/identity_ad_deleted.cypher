// params: sids, ts
// After an INCREMENTAL AD sync committed: objects AD deleted (its tombstones, by objectSid). A deleted
// user loses its AD memberships and attributes and keeps its node only while something else refers to
// it (sessions), as a full sync does; a deleted group goes with its edges; a device loses what a deleted
// computer account told us about it.
UNWIND $sids AS sid
MATCH (u:User {sid: sid})-[m:MEMBER_OF]->(:ADGroup)
WHERE m.source = 'ad'
DELETE m
WITH count(*) AS _members
UNWIND $sids AS sid
MATCH (u:User {sid: sid})
SET u.sid = null, u.dn = null, u.upn = null, u.enabled = null, u.ad_sync = null, u.ad_removed = true,
    u.ad_deleted_at = $ts
WITH count(*) AS _users
MATCH (u:User)
WHERE u.ad_deleted_at = $ts AND u.source = 'ad' AND NOT (u)--()
DELETE u
WITH count(*) AS _orphans
UNWIND $sids AS sid
MATCH (g:ADGroup {sid: sid})
DETACH DELETE g
WITH count(*) AS _groups
UNWIND $sids AS sid
MATCH (d:Device {ad_sid: sid})
SET d.ad_sid = null, d.dns_host_name = null, d.operating_system = null, d.ad_sync = null, d.ad_seen = null
RETURN count(*) AS done
