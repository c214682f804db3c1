// params: -
// The egress matrix cells ISE owns in the graph, as a complete ERS read is compared with them.
MATCH (a:SGT)-[e:EGRESS_POLICY]->(b:SGT)
WHERE e.source = 'ise'
RETURN a.value AS src, b.value AS dst, e.sgacls AS sgacls, e.default_rule AS default_rule, e.status AS status,
       e.ise_id AS ise_id
