// params: keep
// Keep the newest `keep` clustering runs; delete older runs with their clusters and memberships.
MATCH (r:ClusteringRun)
WITH r ORDER BY r.created_ms DESC
SKIP $keep
OPTIONAL MATCH (k:Cluster)-[:OF_RUN]->(r)
DETACH DELETE k, r
