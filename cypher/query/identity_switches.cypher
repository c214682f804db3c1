// params: -
// Every switch's id and management address: sessions name the switch by NAS IP or identifier.
MATCH (sw:Switch)
RETURN sw.switch_id AS switch_id, sw.mgmt_ip AS mgmt_ip
