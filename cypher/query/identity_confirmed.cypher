// params: macs
// When each existing device's identity was last confirmed (absent: a device new to the graph). The
// session merger's per-process cache is valid for a device only while this still equals what it wrote.
UNWIND $macs AS mac
MATCH (d:Device {uid: mac})
RETURN mac, d.identity_ts AS ts
