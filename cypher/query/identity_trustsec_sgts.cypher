// params: values
// Where each SGT's definition came from: the source that first named the tag, whether ISE names it and
// since when, and when ISE deleted it (the node stays while devices still carry the tag).
UNWIND $values AS v
MATCH (s:SGT {value: v})
RETURN s.value AS value, s.source AS source, s.name_source AS name_source, s.first_seen AS first_seen,
       s.ise_since AS ise_since, s.ise_deleted_at AS ise_deleted_at
