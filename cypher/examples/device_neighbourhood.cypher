// params: mac
// Neo4j Browser: one device, its switch, SGT and everything it talks to (draw as a graph).
// Set the parameter first:  :param mac => '02:00:00:00:00:01'
MATCH (d:Device {mac: $mac})
OPTIONAL MATCH (d)-[c:CONNECTED_TO]->(s:Switch)
OPTIONAL MATCH (d)-[h:HAS_SGT]->(t:SGT)
OPTIONAL MATCH (d)-[e:FLOWS_TO]-(peer:Device)
RETURN d, c, s, h, t, e, peer
LIMIT 300
