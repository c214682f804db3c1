// params: username
// One user with the devices assigned to it (newest first).
MATCH (u:User {username: $username})
OPTIONAL MATCH (d:Device)-[a:ASSIGNED_TO]->(u)
RETURN u AS user, d AS device, a.since AS since, a.last_seen AS last_seen, a.until AS until, a.source AS source
ORDER BY a.last_seen DESC
