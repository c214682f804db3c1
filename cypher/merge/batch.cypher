// params: agent_id, seq, digest, switch_id, switch_name, switch_ip, window_start, window_end, day, devices, sgts, attach, services, flows, applied_at, n_nodes, n_edges
// One EdgeGraph, applied atomically together with its Batch record (one query on FalkorDB,
// one transaction on Neo4j). The unique (agent_id, seq) constraint on Batch turns a racing
// replay into a rolled-back conflict. Rows are pre-aggregated: each key appears once.
// $devices rows: [uid, kind, mac, ip, local]; $flows rows: [src, dst, protocol, port, bytes,
// packets, flows, first_seen, last_seen] (lists, not maps: see clarion.ingest.transform).
MERGE (sw:Switch {switch_id: $switch_id})
ON CREATE SET sw.first_seen = $window_start, sw.source = 'agent'
SET sw.name = coalesce($switch_name, sw.name),
    sw.mgmt_ip = coalesce($switch_ip, sw.mgmt_ip),
    sw.agent_id = $agent_id,
    sw.last_seen = CASE WHEN sw.last_seen IS NULL OR sw.last_seen < $window_end THEN $window_end ELSE sw.last_seen END
WITH count(*) AS _switch
UNWIND $devices AS n
MERGE (d:Device {uid: n[0]})
ON CREATE SET d.first_seen = $window_start, d.kind = n[1], d.source = 'agent'
SET d.mac = coalesce(n[2], d.mac),
    d.ip = coalesce(n[3], d.ip),
    d.local = n[4],
    d.last_seen = CASE WHEN d.last_seen IS NULL OR d.last_seen < $window_end THEN $window_end ELSE d.last_seen END
WITH count(*) AS _devices
UNWIND $sgts AS t
MATCH (d:Device {uid: t.uid})
MERGE (s:SGT {value: t.sgt})
ON CREATE SET s.first_seen = $window_start, s.source = 'netflow'
MERGE (d)-[h:HAS_SGT]->(s)
ON CREATE SET h.since = $window_start, h.source = 'netflow'
SET h.last_seen = $window_end, d.sgt = t.sgt
WITH count(*) AS _sgts
UNWIND $attach AS c
MATCH (d:Device {uid: c.uid})
MATCH (sw:Switch {switch_id: $switch_id})
MERGE (d)-[r:CONNECTED_TO]->(sw)
ON CREATE SET r.first_seen = $window_start
SET r.interface = c.interface, r.vlan = c.vlan, r.last_seen = $window_end,
    d.switch_id = $switch_id, d.interface = c.interface, d.vlan = c.vlan
WITH count(*) AS _attach
UNWIND $services AS v
MERGE (svc:Service {key: v.key})
ON CREATE SET svc.protocol = v.protocol, svc.port = v.port, svc.first_seen = $window_start
WITH count(*) AS _services
UNWIND $flows AS f
MATCH (a:Device {uid: f[0]})
MATCH (b:Device {uid: f[1]})
MERGE (a)-[e:FLOWS_TO {protocol: f[2], port: f[3], day: $day}]->(b)
ON CREATE SET e.first_seen = f[7]
SET e.bytes = coalesce(e.bytes, 0) + f[4],
    e.packets = coalesce(e.packets, 0) + f[5],
    e.flows = coalesce(e.flows, 0) + f[6],
    e.last_seen = CASE WHEN e.last_seen IS NULL OR e.last_seen < f[8] THEN f[8] ELSE e.last_seen END
WITH count(*) AS _flows
CREATE (:Batch {agent_id: $agent_id, seq: $seq, digest: $digest, switch_id: $switch_id,
                window_start: $window_start, window_end: $window_end, applied_at: $applied_at,
                nodes: $n_nodes, edges: $n_edges})
RETURN _flows AS flows
