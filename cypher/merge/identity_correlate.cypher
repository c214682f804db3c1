// params: outbound, inbound, ips
// Attach IP-only endpoints' flows to the MAC device that held the IP at the flow's time: each listed
// FLOWS_TO is re-created on the device (counters added, times widened) and deleted from the IP node, in
// one atomic statement. Counters are read from the edge at write time, so a flow batch merged between
// planning and this write is never lost. Target keys are unique per list (planned in Python).
UNWIND $outbound AS m
MATCH (n:Device {uid: m.ip})-[old:FLOWS_TO {protocol: m.protocol, port: m.port, day: m.day}]->(p:Device {uid: m.peer})
MATCH (d:Device {uid: m.mac})
MERGE (d)-[e:FLOWS_TO {protocol: m.protocol, port: m.port, day: m.day}]->(p)
SET e.bytes = coalesce(e.bytes, 0) + old.bytes,
    e.packets = coalesce(e.packets, 0) + old.packets,
    e.flows = coalesce(e.flows, 0) + old.flows,
    e.first_seen = CASE WHEN e.first_seen IS NULL OR e.first_seen > old.first_seen THEN old.first_seen ELSE e.first_seen END,
    e.last_seen = CASE WHEN e.last_seen IS NULL OR e.last_seen < old.last_seen THEN old.last_seen ELSE e.last_seen END,
    e.correlated_from = m.ip
DELETE old
WITH count(*) AS _outbound
UNWIND $inbound AS m
MATCH (p:Device {uid: m.peer})-[old:FLOWS_TO {protocol: m.protocol, port: m.port, day: m.day}]->(n:Device {uid: m.ip})
MATCH (d:Device {uid: m.mac})
MERGE (p)-[e:FLOWS_TO {protocol: m.protocol, port: m.port, day: m.day}]->(d)
SET e.bytes = coalesce(e.bytes, 0) + old.bytes,
    e.packets = coalesce(e.packets, 0) + old.packets,
    e.flows = coalesce(e.flows, 0) + old.flows,
    e.first_seen = CASE WHEN e.first_seen IS NULL OR e.first_seen > old.first_seen THEN old.first_seen ELSE e.first_seen END,
    e.last_seen = CASE WHEN e.last_seen IS NULL OR e.last_seen < old.last_seen THEN old.last_seen ELSE e.last_seen END,
    e.correlated_from = m.ip
DELETE old
WITH count(*) AS _inbound
UNWIND $ips AS ip
MATCH (n:Device {uid: ip})
WHERE n.kind = 'ip' AND NOT (n)-[:FLOWS_TO]-()
DETACH DELETE n
RETURN count(*) AS removed
