// params: day_from, day_to, uid_from, uid_to
// FalkorDB variant: the ends as internal node ids (see snapshot_devices.falkordb), not uid strings:
// fetching and printing 2 uids per relationship was half of the read at 100k devices.
// No coalesce() (it costs a call per value): collect() skips nulls, and the reader refuses
// lists whose lengths disagree with n. FLOWS_TO always ends at a Device: b needs no label.
MATCH (a:Device)-[e:FLOWS_TO]->(b)
WHERE a.uid >= $uid_from AND ($uid_to IS NULL OR a.uid < $uid_to) AND e.day >= $day_from AND e.day <= $day_to
RETURN id(a) AS src, count(e) AS n, collect(id(b)) AS dst, collect(e.protocol) AS protocol, collect(e.port) AS port,
       collect(e.bytes) AS bytes, collect(e.packets) AS packets, collect(e.flows) AS flows,
       collect(e.first_seen) AS first_seen, collect(e.last_seen) AS last_seen, collect(e.day) AS day
