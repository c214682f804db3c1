// params: groups, sync_id
// After an INCREMENTAL AD sync committed: each group whose uSNChanged moved was read with its whole
// `member` list, which this sync merged; its other incoming AD memberships are members removed in AD.
// Memberships through a user's primary group are not in `member` and follow the user's own record.
UNWIND $groups AS sid
MATCH (:User)-[m:MEMBER_OF]->(:ADGroup {sid: sid})
WHERE m.source = 'ad' AND m.ad_sync <> $sync_id AND m.primary = false
DELETE m
WITH count(*) AS _users
UNWIND $groups AS sid
MATCH (:ADGroup)-[n:MEMBER_OF]->(:ADGroup {sid: sid})
WHERE n.source = 'ad' AND n.ad_sync <> $sync_id
DELETE n
RETURN count(*) AS done
