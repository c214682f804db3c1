// params: day_from, day_to
// Traffic between SGTs per service over whole UTC days; devices without an SGT count as 0
// (TrustSec's Unknown). The application folds services into cells and keeps the top ones.
MATCH (a:Device)-[e:FLOWS_TO]->(b:Device)
WHERE e.day >= $day_from AND e.day <= $day_to
RETURN coalesce(a.sgt, 0) AS src, coalesce(b.sgt, 0) AS dst, e.protocol AS protocol, e.port AS port,
       sum(e.bytes) AS bytes, sum(e.packets) AS packets, sum(e.flows) AS flows, count(e) AS edges
