// params: -
// Neo4j Browser: devices without an SGT that others connect to (candidates for classification).
MATCH (d:Device)<-[e:FLOWS_TO]-(client:Device)
WHERE d.sgt IS NULL AND d.local = true
WITH d, count(DISTINCT client) AS clients, collect(DISTINCT e.port)[0..10] AS ports
RETURN d.uid AS device, d.ip AS ip, clients, ports
ORDER BY clients DESC
LIMIT 50
