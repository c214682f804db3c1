// params: limit
MATCH (r:ClusteringRun)
RETURN r AS run
ORDER BY r.created_ms DESC
LIMIT $limit
