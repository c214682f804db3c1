// params: uids
// Identity of devices (one row per uid found): the node, its users (ASSIGNED_TO), SGTs (HAS_SGT),
// IP bindings (the IPs a MAC device held; for an IP-only endpoint, the MACs that held its IP) and
// switch ports, each with its source and time. Empty OPTIONAL MATCHes give [null, ...]
// entries, which the application drops.
UNWIND $uids AS uid
MATCH (d:Device {uid: uid})
OPTIONAL MATCH (d)-[a:ASSIGNED_TO]->(u:User)
WITH uid, d, collect([u.username, u.display_name, a.source, a.since, a.last_seen, a.until]) AS users
OPTIONAL MATCH (d)-[h:HAS_SGT]->(s:SGT)
WITH uid, d, users, collect([s.value, s.name, h.source, h.since, h.last_seen, h.until]) AS sgts
OPTIONAL MATCH (b:IpBinding {mac: uid})
WITH uid, d, users, sgts, collect([b.ip, b.since, b.until, b.last_seen, b.source, b.mac]) AS held
OPTIONAL MATCH (h:IpBinding {ip: uid})
WITH uid, d, users, sgts, held, collect([h.ip, h.since, h.until, h.last_seen, h.source, h.mac]) AS holders
OPTIONAL MATCH (d)-[c:CONNECTED_TO]->(sw:Switch)
RETURN uid, d AS device, users, sgts, held + holders AS bindings,
       collect([sw.switch_id, c.interface, c.vlan, c.source, c.first_seen, c.last_seen]) AS ports
