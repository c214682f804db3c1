// params: -
// Neo4j Browser: the 25 device pairs that moved the most bytes, with their SGTs.
MATCH (a:Device)-[e:FLOWS_TO]->(b:Device)
WITH a, b, sum(e.bytes) AS bytes, collect(DISTINCT toString(e.protocol) + '/' + toString(e.port)) AS services
RETURN a.uid AS src, a.sgt AS src_sgt, b.uid AS dst, b.sgt AS dst_sgt, bytes, services
ORDER BY bytes DESC
LIMIT 25
