// params: mac
MATCH (d:Device {mac: $mac})
RETURN d AS device
