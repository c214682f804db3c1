"""The graph store port: the small protocol every adapter implements.

Methods are synchronous (both drivers are sync); async callers run them in a thread pool.
Statements are named files in ``cypher/`` (see ``clarion.store.cypher``), never text built
from input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]


class StoreError(RuntimeError):
    """A store failed; the message names the store and the statement."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached (not started, connection refused, timed out)."""


class BatchConflictError(StoreError):
    """A batch record with this (agent_id, seq) already exists (unique constraint)."""


@runtime_checkable
class GraphStore(Protocol):
    """What the rest of Clarion may ask of a graph store."""

    #: "falkordb" or "neo4j": picks dialect variants of statements, nothing else.
    dialect: str

    def ensure_schema(self) -> None:
        """Create constraints and indexes if missing and wait until they are usable."""

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run the named read statement; rows as dicts keyed by the RETURN aliases."""

    def read_rows(self, statement: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[list[Any]]]:
        """Bulk read of a statement returning only integer and string columns: (header, rows).

        For large scans (analytics snapshots): skips per-value result objects, several
        times faster than ``read`` on FalkorDB. Other value types are not guaranteed (FalkorDB
        answers floats, booleans and lists as text here): wrap ``sum()`` in ``toInteger()``.
        """

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run the named write statement atomically (one transaction / one query).

        Raises BatchConflictError when it would violate the unique batch-record
        constraint; then nothing of the statement was written.
        """

    def clear(self) -> None:
        """Delete every node and relationship of this graph (tests and demo only)."""

    def close(self) -> None:
        """Release connections (and stop an embedded server this store started)."""
