// params: day_from, day_to
// Bulk: every FLOWS_TO in the day range, one row per relationship (per day bucket).
MATCH (a:Device)-[e:FLOWS_TO]->(b:Device)
WHERE e.day >= $day_from AND e.day <= $day_to
RETURN a.uid AS src, b.uid AS dst, e.protocol AS protocol, e.port AS port, e.bytes AS bytes,
       e.packets AS packets, e.flows AS flows, e.first_seen AS first_seen, e.last_seen AS last_seen, e.day AS day
