// params: computers, sync_id, ts
// AD computer accounts carry no MAC: they annotate the devices whose session named them (machine
// authentication, host/NAME); the caller matched names to device uids.
UNWIND $computers AS c
MATCH (d:Device {uid: c.uid})
SET d.ad_sid = c.sid, d.dns_host_name = c.dns_host_name, d.operating_system = c.operating_system,
    d.ad_sync = $sync_id, d.ad_seen = $ts
RETURN count(*) AS computers
