// params: sync_id
// After a complete matrix was merged: remove ISE cells that this sync did not report.
MATCH (:SGT)-[e:EGRESS_POLICY]->(:SGT)
WHERE e.source = 'ise' AND e.sync_id <> $sync_id
DELETE e
RETURN count(*) AS removed
