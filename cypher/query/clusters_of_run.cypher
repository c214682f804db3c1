// params: run_id
MATCH (k:Cluster {run_id: $run_id})
RETURN k AS cluster
ORDER BY k.cluster_id
