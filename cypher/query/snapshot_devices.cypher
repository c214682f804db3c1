// params: -
// Bulk: every device with what clustering may read about it (never a recorded role).
// `node` is the key snapshot_edges uses for its ends (here the uid; FalkorDB: the node id).
MATCH (d:Device)
RETURN d.uid AS node, d.uid AS uid, CASE WHEN d.local THEN 1 ELSE 0 END AS local, d.sgt AS sgt, d.profile AS profile
