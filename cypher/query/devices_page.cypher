// params: after, limit, switch_id, sgt, kind, local
// One page of devices in uid order (the cursor is the last uid seen), optionally filtered.
MATCH (d:Device)
WHERE d.uid > $after
  AND ($switch_id IS NULL OR d.switch_id = $switch_id)
  AND ($sgt IS NULL OR d.sgt = $sgt)
  AND ($kind IS NULL OR d.kind = $kind)
  AND ($local IS NULL OR d.local = $local)
RETURN d AS device
ORDER BY d.uid
LIMIT $limit
