// params: src_sgt, dst_sgt
// Neo4j Browser: which devices make up one cell of the policy matrix, and on which services.
// :param src_sgt => 4
// :param dst_sgt => 16
MATCH (a:Device {sgt: $src_sgt})-[e:FLOWS_TO]->(b:Device {sgt: $dst_sgt})
RETURN a.uid AS src, b.uid AS dst, e.protocol AS protocol, e.port AS port,
       sum(e.bytes) AS bytes, sum(e.flows) AS flows
ORDER BY bytes DESC
LIMIT 100
