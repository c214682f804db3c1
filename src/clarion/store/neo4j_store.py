"""Neo4j 5 adapter (Bolt, official driver); the only ``neo4j`` importer.

Writes run as managed transactions (``execute_write``), so the driver retries transient errors
and deadlocks; one statement is one transaction, so a batch and its record commit together or
not at all. Reads go through ``execute_query`` routed to readers, sharing the driver's bookmark
manager with the writes so a read after a write sees it, even on a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from neo4j import Driver, GraphDatabase, ManagedTransaction, Query, RoutingControl, Session, unit_of_work
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)
from neo4j.graph import Node, Path, Relationship
from neo4j.spatial import Point
from neo4j.time import Date, DateTime, Duration, Time

from clarion.store import cypher
from clarion.store.port import (
    BatchConflictError,
    Column,
    Row,
    StoreError,
    StoreUnavailableError,
    columns_of,
    list_column,
)

if TYPE_CHECKING:
    from clarion.config import Settings

T = TypeVar("T")

_SCHEMES = frozenset({"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"})
_CONSTRAINT_FAILED = "Neo.ClientError.Schema.ConstraintValidationFailed"
#: How Neo4j names the label in that error: "Node(12) already exists with label `Batch` and ...".
_BATCH_LABEL = re.compile(r"`Batch`|:Batch\b|label Batch\b")
#: Wait for every index (and constraint-backing index) to come online; fails on a FAILED index.
_AWAIT_S = 300
_AWAIT_INDEXES = f"CALL db.awaitIndexes({_AWAIT_S})"
#: clear() deletes in slices so a large graph never needs one huge transaction.
_DELETE_SLICE = "MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted"


class Neo4jStore:
    """The graph store port over Neo4j 5 (single instance, cluster or Aura)."""

    dialect = "neo4j"

    def __init__(
        self,
        url: str,
        *,
        user: str,
        password: str,
        database: str = "neo4j",
        timeout_s: float = 120.0,
        retry_s: float = 30.0,
    ) -> None:
        """Create the process's driver; it connects lazily (the store may start after us).

        ``timeout_s`` bounds one transaction on the server; ``retry_s`` bounds how long the
        driver keeps retrying transient failures and unreachable servers before giving up.
        """
        self.url = _redact(url)
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                f"CLARION_GRAPH_URL={self.url!r}: credentials in the URL are not accepted; "
                "set CLARION_NEO4J_USER and CLARION_NEO4J_PASSWORD instead"
            )
        if parts.scheme not in _SCHEMES:
            raise ValueError(
                f"CLARION_GRAPH_URL={self.url!r}: not a Neo4j Bolt URL; "
                "expected neo4j://host:7687, bolt://host:7687 or their +s/+ssc variants"
            )
        self.database = database
        self._timeout_s = timeout_s
        self._user = user
        try:
            self._driver: Driver = GraphDatabase.driver(
                url,
                auth=(user, password),
                user_agent="clarion",
                connection_timeout=10.0,
                connection_acquisition_timeout=60.0,
                max_transaction_retry_time=retry_s,
            )
        except (ConfigurationError, ValueError) as e:
            raise ValueError(
                f"CLARION_GRAPH_URL={self.url!r}: not a usable Neo4j URL ({e}); "
                "expected neo4j://host:7687, bolt://host:7687 or their +s/+ssc variants"
            ) from e

    @classmethod
    def from_settings(cls, settings: Settings) -> Neo4jStore:
        """The store named by ``CLARION_GRAPH_URL`` and ``CLARION_NEO4J_*``."""
        if settings.graph_url is None:
            raise ValueError("CLARION_GRAPH_URL is not set: the Neo4j store needs neo4j://host:7687 or bolt://...")
        return cls(
            settings.graph_url,
            user=settings.neo4j_user,
            password=settings.neo4j_password.get_secret_value(),
            database=settings.neo4j_database,
            timeout_s=settings.store_timeout_s,
        )

    # -- port ---------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Run the IF NOT EXISTS constraints and indexes, then wait until all are online."""
        for i, stmt in enumerate(cypher.load_script("schema/neo4j")):
            self._write(stmt, {}, name=f"schema/neo4j[{i}]")
        self._write(_AWAIT_INDEXES, {}, name="db.awaitIndexes", timeout_s=max(self._timeout_s, _AWAIT_S + 10))

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        keys, records = self._read(statement, params)
        return [{k: _plain(r[k]) for k in keys} for r in records]

    def read_rows(self, statement: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[list[Any]]]:
        keys, records = self._read(statement, params)
        return list(keys), [list(r.values()) for r in records]

    def read_columns(
        self,
        statement: str,
        params: Mapping[str, Any] | None = None,
        *,
        lists: Collection[str] = (),
        tuples: Mapping[str, int] | None = None,
    ) -> dict[str, Column]:
        keys, records = self._read(statement, params)
        rows = [list(r.values()) for r in records]
        return columns_of(f"Neo4j {self.url} db={self.database} ({statement})", keys, rows, lists, list_column, tuples)

    def _read(self, statement: str, params: Mapping[str, Any] | None) -> tuple[list[str], list[Any]]:
        """A named read statement, routed to readers (a cluster's followers)."""
        st, p = cypher.bind(statement, self.dialect, params)
        with self._errors(statement):
            records, _, keys = self._driver.execute_query(
                Query(st.text, timeout=self._timeout_s),
                parameters_=p,
                routing_=RoutingControl.READ,
                database_=self.database,
            )
        return list(keys), records

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        st, p = cypher.bind(statement, self.dialect, params)
        return self._write(st.text, p, name=statement)

    def clear(self) -> None:
        while self._write(_DELETE_SLICE, {}, name="clear")[0]["deleted"]:
            pass

    def close(self) -> None:
        self._driver.close()

    # -- internals ----------------------------------------------------------------------
    def _write(self, text: str, params: dict[str, Any], *, name: str, timeout_s: float | None = None) -> list[Row]:
        @unit_of_work(timeout=timeout_s or self._timeout_s)
        def work(tx: ManagedTransaction) -> list[Row]:
            result = tx.run(text, params)
            keys = result.keys()
            return [{k: _plain(r[k]) for k in keys} for r in result]  # consumed inside the transaction

        return self._in_session(lambda s: s.execute_write(work), name)

    def _in_session(self, fn: Callable[[Session], T], name: str) -> T:
        with (
            self._errors(name),
            self._driver.session(
                database=self.database, bookmark_manager=self._driver.execute_query_bookmark_manager
            ) as session,
        ):
            return fn(session)

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """Translate driver errors into port errors naming the store, the URL and the statement."""
        where = f"Neo4j {self.url} db={self.database} ({name})"
        try:
            yield
        except AuthError as e:
            raise StoreError(
                f"{where}: authentication failed for user {self._user!r} "
                "(check CLARION_NEO4J_USER and CLARION_NEO4J_PASSWORD)"
            ) from e
        except ClientError as e:
            if e.code == _CONSTRAINT_FAILED and _BATCH_LABEL.search(e.message or ""):
                raise BatchConflictError(f"{where}: {e.message}") from e
            raise StoreError(f"{where}: {e.code}: {e.message}") from e
        except (ServiceUnavailable, SessionExpired) as e:
            raise StoreUnavailableError(
                f"{where}: cannot reach the server (is it running, listening there?): {e}"
            ) from e
        except Neo4jError as e:
            raise StoreError(f"{where}: {e.code}: {e.message}") from e
        except DriverError as e:
            raise StoreError(f"{where}: {type(e).__name__}: {e}") from e


def _redact(url: str) -> str:
    """The URL without any user:password part, safe for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _plain(value: Any) -> Any:
    """Driver values as plain Python: nodes and relationships become their property dicts."""
    if isinstance(value, Node | Relationship):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return {"nodes": [_plain(n) for n in value.nodes], "relationships": [_plain(r) for r in value.relationships]}
    if isinstance(value, Point):  # Point and Duration are tuple subclasses: before the list case
        return {"srid": value.srid, "coordinates": list(value)}
    if isinstance(value, Duration):
        return value.iso_format()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, DateTime | Date | Time):
        native: datetime | date | time = value.to_native()
        return native
    return value
