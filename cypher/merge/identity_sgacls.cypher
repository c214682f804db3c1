// params: acls, deleted, ts
// SGACLs (the ACE text) by name as ISE publishes them one at a time (pxGrid securityGroupAclTopic); names
// ISE reported deleted are removed with their matrix links. A complete ERS read uses
// merge/identity_trustsec_sync.
UNWIND $acls AS a
MERGE (x:Sgacl {name: a.name})
ON CREATE SET x.first_seen = $ts, x.source = 'ise'
SET x.aces = a.aces, x.ise_id = a.ise_id, x.ip_version = a.ip_version, x.description = a.description,
    x.last_seen = $ts
WITH count(*) AS _acls
UNWIND $deleted AS name
MATCH (x:Sgacl {name: name})
DETACH DELETE x
RETURN _acls AS acls
