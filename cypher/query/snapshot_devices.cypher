// params: -
// Bulk: every device with what clustering may read about it (never a recorded role).
MATCH (d:Device)
RETURN d.uid AS uid, CASE WHEN d.local THEN 1 ELSE 0 END AS local, d.sgt AS sgt, d.profile AS profile
