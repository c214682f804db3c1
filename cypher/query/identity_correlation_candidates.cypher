// params: ips
// For IP-only endpoints (Device kind 'ip') that some IpBinding names: their bindings and every
// FLOWS_TO they take part in, with its time span. The application picks the binding that covers it.
UNWIND $ips AS ip
MATCH (n:Device {uid: ip})
WHERE n.kind = 'ip'
MATCH (b:IpBinding {ip: ip})
WITH n, collect([b.mac, b.since, b.until]) AS bindings
MATCH (n)-[e:FLOWS_TO]-(peer:Device)
RETURN n.uid AS ip, bindings, startNode(e).uid = n.uid AS outbound, peer.uid AS peer,
       e.protocol AS protocol, e.port AS port, e.day AS day, e.first_seen AS first_seen, e.last_seen AS last_seen
