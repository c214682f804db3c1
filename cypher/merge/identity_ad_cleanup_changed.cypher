// params: users, groups, sync_id
// After an INCREMENTAL AD sync committed: for the users and groups it re-read, drop the direct
// memberships it did not report again (someone left a group). Nothing else is touched.
UNWIND $users AS name
MATCH (:User {username: name})-[m:MEMBER_OF]->(:ADGroup)
WHERE m.source = 'ad' AND m.ad_sync <> $sync_id
DELETE m
WITH count(*) AS _users
UNWIND $groups AS sid
MATCH (:ADGroup {sid: sid})-[n:MEMBER_OF]->(:ADGroup)
WHERE n.source = 'ad' AND n.ad_sync <> $sync_id
DELETE n
RETURN count(*) AS done
