// params: ids
MATCH (s:Switch)
WHERE s.switch_id IN $ids
RETURN s AS switch
