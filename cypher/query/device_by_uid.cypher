// params: uid
MATCH (d:Device {uid: $uid})
RETURN d AS device
