// params: run_id
MATCH (r:ClusteringRun {run_id: $run_id})
RETURN r AS run
