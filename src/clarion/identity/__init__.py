"""Identity in the graph: sessions, Active Directory, TrustSec names, and IP→MAC correlation in time.

Sources (``clarion.sources``) produce plain records; this package merges them with named Cypher statements
and attaches IP-only flow endpoints to the device that held the IP when the flow happened.
"""

from clarion.identity.bindings import after_flow_batch, record_agent_bindings
from clarion.identity.chunk_writer import SessionMergeResult
from clarion.identity.correlate import CorrelationResult, correlate
from clarion.identity.directory import DirectoryMergeResult, merge_directory
from clarion.identity.payload import IdentityBatch
from clarion.identity.service import IdentityResult, apply_identity
from clarion.identity.sessions import merge_sessions
from clarion.identity.trustsec import merge_egress_cells, merge_security_groups, merge_sgacls

__all__ = [
    "CorrelationResult",
    "DirectoryMergeResult",
    "IdentityBatch",
    "IdentityResult",
    "SessionMergeResult",
    "after_flow_batch",
    "apply_identity",
    "correlate",
    "merge_directory",
    "merge_egress_cells",
    "merge_security_groups",
    "merge_sessions",
    "merge_sgacls",
    "record_agent_bindings",
]
