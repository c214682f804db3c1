// params: day_from, day_to, uid_from, uid_to
// FalkorDB variant: the ends as internal node ids (see snapshot_devices.falkordb), not uid strings
// (fetching and printing 2 uids per relationship was half of the read at 100k devices), and the
// end in front of each value tuple: one collect() per source row, not nine (decision 0015: the
// store spent most of the read building per-value lists). No coalesce() (a call per value): the
// reader refuses a tuple holding a null. FLOWS_TO always ends at a Device: b needs no label.
MATCH (a:Device)-[e:FLOWS_TO]->(b)
WHERE a.uid >= $uid_from AND ($uid_to IS NULL OR a.uid < $uid_to) AND e.day >= $day_from AND e.day <= $day_to
RETURN id(a) AS src,
       collect([id(b), e.protocol, e.port, e.bytes, e.packets, e.flows, e.first_seen, e.last_seen, e.day]) AS v
