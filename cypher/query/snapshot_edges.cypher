// params: day_from, day_to, uid_from, uid_to
// Bulk, columnar: the FLOWS_TO rows (one per relationship, i.e. per day bucket) in the day range
// whose source uid is in [uid_from, uid_to) (uid_to null: no upper bound), one row per source
// device: its relationships' ends in `dst` and their values as one integer tuple each in `v`
// (one collect of tuples instead of one per value: decision 0015). Slices read in parallel.
// No coalesce() (it costs the store a call per value): the reader refuses a tuple holding a null.
// FLOWS_TO always ends at a Device: b needs no label.
MATCH (a:Device)-[e:FLOWS_TO]->(b)
WHERE a.uid >= $uid_from AND ($uid_to IS NULL OR a.uid < $uid_to) AND e.day >= $day_from AND e.day <= $day_to
RETURN a.uid AS src, collect(b.uid) AS dst,
       collect([e.protocol, e.port, e.bytes, e.packets, e.flows, e.first_seen, e.last_seen, e.day]) AS v
