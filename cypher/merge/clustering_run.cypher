// params: run_id, created_ms, params_json, input_digest, n_devices, n_clusters, n_noise, next_cluster_id, day_from, day_to, clusters, members
// One clustering run written atomically: the run, its clusters and every member's IN_CLUSTER.
// Cluster.uid = run_id + ':' + cluster_id; cluster_id stays stable across runs.
// $members[i] lists cluster i's members as [device uid, probability]: each member is found
// by its indexed uid and linked to the cluster just created (no lookup of the cluster).
CREATE (r:ClusteringRun {run_id: $run_id, created_ms: $created_ms, params: $params_json,
                         input_digest: $input_digest, devices: $n_devices, clusters: $n_clusters,
                         noise: $n_noise, next_cluster_id: $next_cluster_id, day_from: $day_from, day_to: $day_to})
WITH r
UNWIND range(0, size($clusters) - 1) AS i
WITH r, $clusters[i] AS c, $members[i] AS ms
CREATE (k:Cluster {uid: c.uid, cluster_id: c.cluster_id, run_id: $run_id, label: c.label, size: c.size,
                   confidence: c.confidence, separation: c.separation, reasons: c.reasons,
                   rec_sgt: c.rec_sgt, rec_sgt_name: c.rec_sgt_name, rec_is_new: c.rec_is_new,
                   rec_confidence: c.rec_confidence, rec_disagreeing: c.rec_disagreeing})
CREATE (k)-[:OF_RUN]->(r)
WITH k, ms
UNWIND ms AS m
MATCH (d:Device {uid: m[0]})
CREATE (d)-[:IN_CLUSTER {run_id: $run_id, probability: m[1]}]->(k)
RETURN count(*) AS members
