// params: -
// Totals for the dashboard. FalkorDB's sum() is a float: exact up to 2^53.
OPTIONAL MATCH (d:Device)
WITH count(d) AS devices
OPTIONAL MATCH (s:Switch)
WITH devices, count(s) AS switches
OPTIONAL MATCH ()-[e:FLOWS_TO]->()
RETURN devices, switches, count(e) AS flow_edges,
       sum(e.bytes) AS bytes, sum(e.packets) AS packets, sum(e.flows) AS flows
