// params: -
// SGT names known to the graph: sessions may give only the name (ISE's ctsSecurityGroup).
MATCH (s:SGT)
WHERE s.name IS NOT NULL
RETURN s.value AS value, s.name AS name
