// params: -
MATCH (s:SGT)
RETURN s.value AS value, s.name AS name
ORDER BY value
