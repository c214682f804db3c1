// params: -
// Bulk: every device with what clustering may read about it (never a recorded role).
// `node` is the internal node id snapshot_edges uses for its ends (integers read far faster
// than uid strings); the reader re-reads this afterwards to catch an id reused meanwhile.
MATCH (d:Device)
RETURN id(d) AS node, d.uid AS uid, CASE WHEN d.local THEN 1 ELSE 0 END AS local, d.sgt AS sgt, d.profile AS profile
