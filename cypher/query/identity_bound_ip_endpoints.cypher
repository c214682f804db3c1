// params: -
// Every IP-only endpoint whose IP has a known MAC binding: what a full correlation pass looks at.
MATCH (n:Device)
WHERE n.kind = 'ip'
MATCH (b:IpBinding {ip: n.uid})
RETURN DISTINCT n.uid AS ip
