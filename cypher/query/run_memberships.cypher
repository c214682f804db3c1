// params: run_id
// Bulk: every (cluster_id, device uid) of a run, to keep cluster ids stable in the next run.
MATCH (d:Device)-[:IN_CLUSTER]->(k:Cluster {run_id: $run_id})
RETURN k.cluster_id AS cluster_id, d.uid AS uid
