// params: day_from, day_to, uid_from, uid_to
// Bulk, columnar: the FLOWS_TO rows (one per relationship, i.e. per day bucket) in the day range
// whose source uid is in [uid_from, uid_to) (uid_to null: no upper bound), one row per source
// device with its relationships' values in step-aligned lists. Slices read in parallel.
MATCH (a:Device)-[e:FLOWS_TO]->(b:Device)
WHERE a.uid >= $uid_from AND ($uid_to IS NULL OR a.uid < $uid_to) AND e.day >= $day_from AND e.day <= $day_to
RETURN a.uid AS src, count(e) AS n, collect(b.uid) AS dst, collect(coalesce(e.protocol, 0)) AS protocol,
       collect(coalesce(e.port, 0)) AS port, collect(coalesce(e.bytes, 0)) AS bytes,
       collect(coalesce(e.packets, 0)) AS packets, collect(coalesce(e.flows, 0)) AS flows,
       collect(coalesce(e.first_seen, 0)) AS first_seen, collect(coalesce(e.last_seen, 0)) AS last_seen,
       collect(coalesce(e.day, 0)) AS day
