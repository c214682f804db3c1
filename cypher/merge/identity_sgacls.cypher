// params: acls, deleted, sync_id, ts
// SGACLs (the ACE text) by name; names ISE reported deleted are removed with their matrix links.
// `sync_id` is the complete ERS read that listed them (null for a single pxGrid update).
UNWIND $acls AS a
MERGE (x:Sgacl {name: a.name})
ON CREATE SET x.first_seen = $ts, x.source = 'ise'
SET x.aces = a.aces, x.ise_id = a.ise_id, x.ip_version = a.ip_version, x.description = a.description,
    x.last_seen = $ts, x.ise_sync = coalesce($sync_id, x.ise_sync)
WITH count(*) AS _acls
UNWIND $deleted AS name
MATCH (x:Sgacl {name: name})
DETACH DELETE x
RETURN _acls AS acls
