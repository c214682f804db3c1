// params: uid, after, limit
// One page of a cluster's members in uid order.
MATCH (d:Device)-[m:IN_CLUSTER]->(k:Cluster {uid: $uid})
WHERE d.uid > $after
RETURN d.uid AS uid, m.probability AS probability, d.sgt AS sgt
ORDER BY d.uid
LIMIT $limit
