// params: -
// FalkorDB: unnamed indexes only (no IF NOT EXISTS); unique constraints go through the
// GRAPH.CONSTRAINT command, built by the adapter from schema/model.json. No index (and no
// constraint) on SGT.value: FalkorDB 4.16.3 loses value 0 from it after a restart (ADR 0016).
CREATE INDEX FOR (d:Device) ON (d.uid);
CREATE INDEX FOR (d:Device) ON (d.mac);
CREATE INDEX FOR (d:Device) ON (d.ip);
CREATE INDEX FOR (s:Switch) ON (s.switch_id);
CREATE INDEX FOR (u:User) ON (u.username);
CREATE INDEX FOR (g:ADGroup) ON (g.sid);
CREATE INDEX FOR (s:Service) ON (s.key);
CREATE INDEX FOR (c:Cluster) ON (c.uid);
CREATE INDEX FOR (c:Cluster) ON (c.run_id);
CREATE INDEX FOR (r:ClusteringRun) ON (r.run_id);
CREATE INDEX FOR (a:Sgacl) ON (a.name);
CREATE INDEX FOR (b:Batch) ON (b.agent_id, b.seq);
CREATE INDEX FOR (i:IpBinding) ON (i.ip);
CREATE INDEX FOR (i:IpBinding) ON (i.mac);
