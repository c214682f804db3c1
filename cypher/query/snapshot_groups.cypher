// params: -
// Bulk: the AD groups of each device's users, direct and nested (identity features).
MATCH (d:Device)-[:ASSIGNED_TO]->(:User)-[:MEMBER_OF*1..8]->(g:ADGroup)
RETURN DISTINCT d.uid AS uid, g.name AS grp
