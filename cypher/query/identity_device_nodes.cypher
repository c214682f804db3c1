// params: uids
// Device nodes by uid (a user's devices).
UNWIND $uids AS uid
MATCH (d:Device {uid: uid})
RETURN d AS device
