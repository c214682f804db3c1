// params: uid
MATCH (k:Cluster {uid: $uid})
RETURN k AS cluster
