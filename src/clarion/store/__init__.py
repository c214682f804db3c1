"""Graph store port and its adapters (embedded FalkorDB, external FalkorDB, Neo4j 5).

Only the adapters know which store is behind the port; everything else calls the port.
"""

from clarion.store.port import BatchConflictError, GraphStore, StoreError, StoreUnavailableError

__all__ = ["BatchConflictError", "GraphStore", "StoreError", "StoreUnavailableError"]
