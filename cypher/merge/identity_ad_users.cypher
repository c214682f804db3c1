// params: users, groups, members, sync_id, ts
// AD users keyed like sessions' users (lower-case sAMAccountName) and their direct groups. Groups only
// referenced (not read in this snapshot) are created as SID placeholders. Rows unique per key. A
// membership says whether it is the user's primary group (primaryGroupID, never listed in the group's
// `member`), so replacing a changed group's member list leaves it alone.
UNWIND $users AS u
MERGE (x:User {username: u.username})
ON CREATE SET x.first_seen = $ts, x.source = 'ad'
SET x.sid = u.sid, x.dn = u.dn, x.upn = u.upn, x.display_name = u.display_name, x.mail = u.mail,
    x.enabled = u.enabled, x.ad_sync = $sync_id, x.last_seen = $ts
WITH count(*) AS _users
UNWIND $groups AS sid
MERGE (g:ADGroup {sid: sid})
ON CREATE SET g.first_seen = $ts, g.source = 'ad'
SET g.ad_sync = $sync_id
WITH count(*) AS _groups
UNWIND $members AS m
MATCH (x:User {username: m.username})
MATCH (g:ADGroup {sid: m.sid})
MERGE (x)-[r:MEMBER_OF]->(g)
ON CREATE SET r.since = $ts, r.source = 'ad'
SET r.ad_sync = $sync_id, r.last_seen = $ts, r.primary = m.primary
RETURN count(*) AS members
