// params: -
MATCH (s:Switch)
OPTIONAL MATCH (d:Device)-[:CONNECTED_TO]->(s)
RETURN s AS switch, count(d) AS devices
ORDER BY s.switch_id
