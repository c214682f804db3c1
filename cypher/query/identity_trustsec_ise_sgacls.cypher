// params: -
// The SGACLs ISE owns in the graph, as a complete ERS read is compared with them.
MATCH (x:Sgacl)
WHERE x.source = 'ise'
RETURN x.name AS name, x.aces AS aces, x.ise_id AS ise_id, x.ip_version AS ip_version, x.description AS description
