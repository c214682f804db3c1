// params: rows
// Events that re-confirm a device's current identity (same user, SGT, port, IPs, profile, state):
// only the device's confirmation time moves. Open intervals are current as of d.identity_ts.
// rows: [mac, ts]
UNWIND $rows AS r
MATCH (d:Device {uid: r[0]})
SET d.identity_ts = CASE WHEN d.identity_ts IS NULL OR d.identity_ts < r[1] THEN r[1] ELSE d.identity_ts END,
    d.last_seen = CASE WHEN d.last_seen IS NULL OR d.last_seen < r[1] THEN r[1] ELSE d.last_seen END
RETURN count(*) AS touched
