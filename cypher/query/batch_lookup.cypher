// params: agent_id, seq
// The record of an applied batch, if any: decides duplicate (same digest) or conflict.
MATCH (b:Batch {agent_id: $agent_id, seq: $seq})
RETURN b.digest AS digest, b.applied_at AS applied_at
