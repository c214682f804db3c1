// params: -
// Devices that a machine-authentication session named (host/NAME): AD computers attach to them.
MATCH (d:Device)
WHERE d.hostname IS NOT NULL
RETURN d.uid AS uid, d.hostname AS hostname
