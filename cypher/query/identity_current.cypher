// params: macs
// The identity a batch of devices has now: what the session merger compares events against, so an
// event that only re-confirms the current state costs one small write, and a new device takes the
// CREATE path. Rows: (mac, kind, value) with kind d (device fields), u (open user), t (open SGT
// [source, value]), i (open IP binding), s (switch). Plain MATCHes in a UNION: FalkorDB runs
// per-row OPTIONAL MATCHes an order of magnitude slower.
UNWIND $macs AS mac
MATCH (d:Device {uid: mac})
RETURN mac, 'd' AS kind,
       [d.identity_ts, d.session_state, d.profile, d.switch_id, d.interface, d.vlan, d.hostname] AS value
UNION ALL
UNWIND $macs AS mac
MATCH (:Device {uid: mac})-[a:ASSIGNED_TO]->(u:User)
WHERE a.until IS NULL
RETURN mac, 'u' AS kind, [u.username] AS value
UNION ALL
UNWIND $macs AS mac
MATCH (:Device {uid: mac})-[h:HAS_SGT]->(s:SGT)
WHERE h.until IS NULL
RETURN mac, 't' AS kind, [h.source, s.value] AS value
UNION ALL
UNWIND $macs AS mac
MATCH (b:IpBinding {mac: mac})
WHERE b.open = true
RETURN mac, 'i' AS kind, [b.ip] AS value
UNION ALL
UNWIND $macs AS mac
MATCH (:Device {uid: mac})-[:CONNECTED_TO]->(sw:Switch)
RETURN mac, 's' AS kind, [sw.switch_id] AS value
