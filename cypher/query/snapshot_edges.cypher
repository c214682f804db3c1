// params: day_from, day_to, uid_from, uid_to
// Bulk, columnar: the FLOWS_TO rows (one per relationship, i.e. per day bucket) in the day range
// whose source uid is in [uid_from, uid_to) (uid_to null: no upper bound), one row per source
// device with its relationships' values in step-aligned lists. Slices read in parallel.
// No coalesce() (it costs the store a call per value): collect() skips nulls, and the reader
// refuses lists whose lengths disagree with n. FLOWS_TO always ends at a Device: b needs no label.
MATCH (a:Device)-[e:FLOWS_TO]->(b)
WHERE a.uid >= $uid_from AND ($uid_to IS NULL OR a.uid < $uid_to) AND e.day >= $day_from AND e.day <= $day_to
RETURN a.uid AS src, count(e) AS n, collect(b.uid) AS dst, collect(e.protocol) AS protocol, collect(e.port) AS port,
       collect(e.bytes) AS bytes, collect(e.packets) AS packets, collect(e.flows) AS flows,
       collect(e.first_seen) AS first_seen, collect(e.last_seen) AS last_seen, collect(e.day) AS day
