// params: uid, day_from, day_to, sample
// What a device talks to, per service: one row per (protocol, port).
MATCH (d:Device {uid: $uid})-[e:FLOWS_TO]->(p:Device)
WHERE e.day >= $day_from AND e.day <= $day_to
WITH e.protocol AS protocol, e.port AS port, p.uid AS peer, sum(e.bytes) AS b, sum(e.packets) AS k, sum(e.flows) AS f
RETURN protocol, port, count(peer) AS peers, sum(b) AS bytes, sum(k) AS packets, sum(f) AS flows,
       collect(peer)[0..$sample] AS sample_peers
ORDER BY bytes DESC
