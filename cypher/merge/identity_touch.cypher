// params: rows
// Events that re-confirm a device's current identity (same user, SGT, port, IPs, profile, state):
// only the device's confirmation time moves. Open intervals are current as of d.identity_ts.
// rows: [mac, ts, expected identity_ts]. A device whose identity_ts is no longer the expected one was
// written by someone else since the caller looked (another request merged concurrently): it is left alone,
// and the MACs returned (those touched) tell the caller which ones to classify again.
UNWIND $rows AS r
MATCH (d:Device {uid: r[0]})
WHERE d.identity_ts = r[2]
SET d.identity_ts = CASE WHEN d.identity_ts < r[1] THEN r[1] ELSE d.identity_ts END,
    d.last_seen = CASE WHEN d.last_seen IS NULL OR d.last_seen < r[1] THEN r[1] ELSE d.last_seen END
RETURN count(*) AS touched, collect(r[0]) AS macs
