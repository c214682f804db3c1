// params: -
// Neo4j 5 schema: one unique constraint per node key (it brings its own index), plus lookups.
CREATE CONSTRAINT device_uid IF NOT EXISTS FOR (d:Device) REQUIRE d.uid IS UNIQUE;
CREATE CONSTRAINT switch_id IF NOT EXISTS FOR (s:Switch) REQUIRE s.switch_id IS UNIQUE;
CREATE CONSTRAINT user_name IF NOT EXISTS FOR (u:User) REQUIRE u.username IS UNIQUE;
CREATE CONSTRAINT adgroup_sid IF NOT EXISTS FOR (g:ADGroup) REQUIRE g.sid IS UNIQUE;
CREATE CONSTRAINT sgt_value IF NOT EXISTS FOR (t:SGT) REQUIRE t.value IS UNIQUE;
CREATE CONSTRAINT service_key IF NOT EXISTS FOR (s:Service) REQUIRE s.key IS UNIQUE;
CREATE CONSTRAINT cluster_uid IF NOT EXISTS FOR (c:Cluster) REQUIRE c.uid IS UNIQUE;
CREATE INDEX cluster_run IF NOT EXISTS FOR (c:Cluster) ON (c.run_id);
CREATE CONSTRAINT clustering_run_id IF NOT EXISTS FOR (r:ClusteringRun) REQUIRE r.run_id IS UNIQUE;
CREATE CONSTRAINT sgacl_name IF NOT EXISTS FOR (a:Sgacl) REQUIRE a.name IS UNIQUE;
CREATE CONSTRAINT batch_key IF NOT EXISTS FOR (b:Batch) REQUIRE (b.agent_id, b.seq) IS UNIQUE;
CREATE INDEX device_mac IF NOT EXISTS FOR (d:Device) ON (d.mac);
CREATE INDEX device_ip IF NOT EXISTS FOR (d:Device) ON (d.ip);
CREATE INDEX ip_binding_ip IF NOT EXISTS FOR (i:IpBinding) ON (i.ip);
CREATE INDEX ip_binding_mac IF NOT EXISTS FOR (i:IpBinding) ON (i.mac);
