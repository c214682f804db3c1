// params: -
MATCH (s:SGT)
WHERE s.name IS NOT NULL
RETURN s.value AS value, s.name AS name
