"""FalkorDB adapter (embedded child process or an external server); the only ``falkordb`` importer.

FalkorDB runs each query atomically, so one statement is one unit of work. Facts measured on
4.16 that shape this module: index builds are asynchronous (poll until OPERATIONAL), unique
constraints go through ``GRAPH.CONSTRAINT``, and redis-py's default 5 s timeout is too short.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from falkordb import FalkorDB
from falkordb.helpers import stringify_param_value
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from clarion.store import cypher
from clarion.store.embedded import EmbeddedFalkorDB
from clarion.store.port import (
    BatchConflictError,
    Column,
    Row,
    StoreError,
    StoreUnavailableError,
    columns_of,
    list_column,
    tuple_column,
)

log = logging.getLogger(__name__)
_INT = re.compile(r"-?[0-9]+")

#: Unique keys of ``schema/model.json`` that FalkorDB neither indexes nor enforces (ADR 0016):
#: 4.16.3 leaves nodes whose indexed number is 0 out of an index rebuilt from an RDB (the AOF base
#: file), so after a restart ``MERGE (:SGT {value: 0})`` misses SGT 0 and the unique constraint
#: segfaults in ``EnforceUniqueEntity``. SGT nodes are few, so MERGE finds them by label scan; every
#: writer of them uses MERGE and FalkorDB runs write queries one at a time per graph: no duplicates.
_NOT_ENFORCED_UNIQUE: frozenset[tuple[str, tuple[str, ...]]] = frozenset({("SGT", ("value",))})


class FalkorDBStore:
    """The graph store port over FalkorDB's own protocol (never its experimental Bolt endpoint)."""

    dialect = "falkordb"

    def __init__(
        self,
        *,
        graph: str,
        socket_path: str | None = None,
        host: str | None = None,
        port: int | None = None,
        password: str | None = None,
        timeout_s: float = 120.0,
        embedded: EmbeddedFalkorDB | None = None,
    ) -> None:
        self.graph_name = graph
        self.target = socket_path or f"{host}:{port}"
        self._embedded = embedded
        self._timeout_ms = int(timeout_s * 1000)
        self._db = FalkorDB(
            host=host or "localhost",
            port=port or 6379,
            unix_socket_path=socket_path,
            password=password,
            socket_timeout=timeout_s + 5,
            socket_connect_timeout=10,
            max_connections=64,
        )
        self._graph = self._db.select_graph(graph)

    @classmethod
    def embedded(cls, data_dir: Path, graph: str, timeout_s: float = 120.0) -> FalkorDBStore:
        server = EmbeddedFalkorDB(data_dir)
        sock = server.start()
        return cls(graph=graph, socket_path=sock, timeout_s=timeout_s, embedded=server)

    @classmethod
    def from_url(cls, url: str, graph: str, password: str | None = None, timeout_s: float = 120.0) -> FalkorDBStore:
        u = urlparse(url)
        if not u.hostname:
            raise ValueError(f"CLARION_GRAPH_URL={url!r}: expected falkordb://host:port")
        return cls(
            graph=graph, host=u.hostname, port=u.port or 6379, password=password or u.password, timeout_s=timeout_s
        )

    def with_graph(self, graph: str) -> FalkorDBStore:
        """Another graph on the same server connection (tests use a fresh graph each)."""
        other = object.__new__(FalkorDBStore)
        other.__dict__.update(self.__dict__)
        other.graph_name = graph
        other._graph = self._db.select_graph(graph)
        other._embedded = None  # the original owns the server
        return other

    # -- port ---------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Indexes and unique constraints from ``cypher/schema``, minus ``_NOT_ENFORCED_UNIQUE``.

        A graph from an older Clarion has that index and constraint dropped first (before any write);
        the keys' uniqueness is verified instead, so a store restarted from an RDB is safe to merge into.
        """
        self._drop_unsafe_constraints()
        # db.indexes() reports one row per label listing every indexed property of it
        indexed = {(r["label"], p) for r in self._indexes() for p in r["properties"]}
        for stmt in cypher.load_script("schema/falkordb"):
            label, props = _index_target(stmt)
            if not all((label, p) in indexed for p in props):
                self._query(stmt, {}, name="schema/falkordb")
        self._wait_operational(self._indexes, "index")
        model = json.loads((cypher.cypher_dir() / "schema" / "model.json").read_text())
        have = {(r["label"], tuple(r["properties"])) for r in self._constraints()}
        for c in model["unique"]:
            key = (c["label"], tuple(c["properties"]))
            if key in have or key in _NOT_ENFORCED_UNIQUE:
                continue
            names = [str(p) for p in c["properties"]]
            try:
                self._db.connection.execute_command(
                    "GRAPH.CONSTRAINT", "CREATE", self.graph_name, "UNIQUE", "NODE", c["label"],
                    "PROPERTIES", str(len(names)), *names,
                )  # fmt: skip
            except ResponseError as e:
                raise StoreError(f"FalkorDB {self.target}: creating unique constraint {c}: {e}") from e
        self._wait_operational(self._constraints, "constraint")
        self._verify_unique_by_merge()

    def _drop_unsafe_constraints(self) -> None:
        """Drop the constraints and indexes of ``_NOT_ENFORCED_UNIQUE`` an older Clarion created (heals its data)."""
        unsafe = {(label, p) for label, props in _NOT_ENFORCED_UNIQUE for p in props}
        for r in self._constraints():
            label, props = r["label"], tuple(str(p) for p in r["properties"])
            if (label, props) not in _NOT_ENFORCED_UNIQUE:
                continue
            log.warning("dropping FalkorDB unique constraint %s%s: it crashes 4.16 after a restart", label, props)
            try:
                self._db.connection.execute_command(
                    "GRAPH.CONSTRAINT", "DROP", self.graph_name, "UNIQUE", "NODE", label,
                    "PROPERTIES", str(len(props)), *props,
                )  # fmt: skip
            except ResponseError as e:
                raise StoreError(f"FalkorDB {self.target}: dropping unique constraint {label}{props}: {e}") from e
        self._wait_gone(self._constraints, unsafe)
        for r in self._indexes():
            for p in r["properties"]:
                if (r["label"], p) in unsafe:
                    log.warning(
                        "dropping FalkorDB index %s.%s: 4.16 misses value 0 in it after a restart", r["label"], p
                    )
                    self._query(f"DROP INDEX FOR (n:{r['label']}) ON (n.{p})", {}, name="schema/falkordb")
        self._wait_gone(self._indexes, unsafe)

    def _wait_gone(self, fetch: Any, keys: set[tuple[str, str]], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while any((r["label"], p) in keys for r in fetch() for p in r["properties"]):
            if time.monotonic() > deadline:
                raise StoreError(
                    f"FalkorDB {self.target}: {sorted(keys)} still defined {timeout_s:.0f} s after dropping"
                )
            time.sleep(0.05)

    def _verify_unique_by_merge(self) -> None:
        """Refuse a graph where a key kept unique by MERGE alone has duplicates (never expected)."""
        for label, props in sorted(_NOT_ENFORCED_UNIQUE):
            keys = ", ".join(f"n.{p}" for p in props)
            dup = self._schema_query(
                f"MATCH (n:{label}) WITH [{keys}] AS k, count(*) AS c WHERE c > 1 RETURN k, c ORDER BY c DESC LIMIT 5"
            )
            if dup:
                raise StoreError(
                    f"FalkorDB {self.target}: graph {self.graph_name} has duplicate {label} nodes on "
                    f"{', '.join(props)} (key, count): {[tuple(r) for r in dup]}; merge or delete them"
                )

    def read(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        st, p = cypher.bind(statement, self.dialect, params)
        return self._query(st.text, p, name=statement, read_only=True)

    def read_rows(self, statement: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[list[Any]]]:
        st, p = cypher.bind(statement, self.dialect, params)
        header = params_header(p)
        try:
            # verbose (non-compact) replies are parsed by hiredis in C: integers and strings come back as is
            resp = self._db.connection.execute_command(
                "GRAPH.RO_QUERY", self.graph_name, header + st.text, "timeout", self._timeout_ms
            )
        except (RedisConnectionError, RedisTimeoutError) as e:
            raise StoreUnavailableError(f"FalkorDB {self.target} ({statement}): {e}") from e
        except ResponseError as e:
            if "empty key" in str(e):
                return [], []
            raise StoreError(f"FalkorDB {self.target} ({statement}): {e}") from e
        if len(resp) < 3:  # a statement without RETURN answers statistics only
            return [], []
        return [str(h) for h in resp[0]], resp[1]

    def read_columns(
        self,
        statement: str,
        params: Mapping[str, Any] | None = None,
        *,
        lists: Collection[str] = (),
        tuples: Mapping[str, int] | None = None,
    ) -> dict[str, Column]:
        header, rows = self.read_rows(statement, params)
        where = f"FalkorDB {self.target} ({statement})"
        return columns_of(where, header, rows, lists, _text_lists, tuples, _text_tuples)

    def write(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        st, p = cypher.bind(statement, self.dialect, params)
        return self._query(st.text, p, name=statement)

    def clear(self) -> None:
        """Delete every node and relationship; the graph and its indexes and constraints stay."""
        self._query("MATCH (n) DETACH DELETE n", {}, name="clear")

    def drop_graph(self) -> None:
        """Delete the whole graph, schema included (FalkorDB only: tests use a graph each)."""
        try:
            self._graph.delete()
        except ResponseError as e:
            if "empty key" not in str(e):
                raise StoreError(f"FalkorDB {self.target}: deleting graph {self.graph_name}: {e}") from e

    def close(self) -> None:
        try:
            self._db.connection.close()
        finally:
            if self._embedded is not None:
                self._embedded.stop()

    # -- internals ----------------------------------------------------------------------
    def _query(self, text: str, params: dict[str, Any], *, name: str, read_only: bool = False) -> list[Row]:
        query = params_header(params) + text
        try:
            if read_only:
                res = self._graph.ro_query(query, timeout=self._timeout_ms)
            else:
                res = self._graph.query(query, timeout=self._timeout_ms)
        except (RedisConnectionError, RedisTimeoutError) as e:
            raise StoreUnavailableError(f"FalkorDB {self.target} ({name}): {e}") from e
        except ResponseError as e:
            if "unique constraint violation" in str(e):
                raise BatchConflictError(f"FalkorDB {self.target} ({name}): {e}") from e
            raise StoreError(f"FalkorDB {self.target} ({name}): {e}") from e
        header = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        return [dict(zip(header, (_plain(v) for v in row), strict=True)) for row in res.result_set]

    def _indexes(self) -> list[Row]:
        return self._schema_rows("CALL db.indexes() YIELD label, properties, status RETURN label, properties, status")

    def _constraints(self) -> list[Row]:
        return self._schema_rows(
            "CALL db.constraints() YIELD label, properties, status RETURN label, properties, status"
        )

    def _schema_rows(self, text: str) -> list[Row]:
        return [{"label": r[0], "properties": list(r[1]), "status": r[2]} for r in self._schema_query(text)]

    def _schema_query(self, text: str) -> list[list[Any]]:
        try:
            res = self._graph.ro_query(text)
        except ResponseError as e:
            if "empty key" in str(e):  # the graph does not exist yet: nothing is defined
                return []
            raise StoreError(f"FalkorDB {self.target}: reading schema: {e}") from e
        return [list(r) for r in res.result_set]

    def _wait_operational(self, fetch: Any, what: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [r for r in fetch() if r["status"] != "OPERATIONAL"]
            if not pending:
                return
            if any(r["status"] == "FAILED" for r in pending):
                raise StoreError(f"FalkorDB {self.target}: {what} build failed: {pending}")
            if time.monotonic() > deadline:
                raise StoreError(f"FalkorDB {self.target}: {what}es still building after {timeout_s:.0f} s: {pending}")
            time.sleep(0.05)


def params_header(params: Mapping[str, Any]) -> str:
    """``CYPHER k=v ...``: FalkorDB takes parameters as literals in front of the query text."""
    if not params:
        return ""
    return "CYPHER " + " ".join(f"{k}={render_literal(v)}" for k, v in params.items()) + " "


#: A ``\\u`` escape in JSON text: a ``u`` after an odd number of backslashes.
_UNICODE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u")


def render_literal(value: Any) -> str:
    """A Cypher literal for ``value``; rows of lists take a C-speed path (json), the rest the client's.

    JSON arrays of numbers, strings, booleans and null are valid Cypher literals, except for
    ``\\u`` escapes, which FalkorDB does not decode: text needing them (control characters) takes the
    client's path. An escaped backslash before a ``u`` (``CORP\\user``) is not such an escape.
    """
    if isinstance(value, list) and value and isinstance(value[0], list):
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            text = ""
        if text and "{" not in text and ("\\u" not in text or not _UNICODE_ESCAPE.search(text)):
            return text
    return str(stringify_param_value(value))


def _text_lists(where: str, name: str, values: list[Any]) -> Column:
    """Lists answered as text (``[1, 2]``, ``[a, b]``), flattened: one C-speed parse of all rows, no object per item.

    FalkorDB's verbose reply renders a list as text with ", " between items and strings unquoted;
    parsing every row at once is what makes millions of values cheap to read.
    """
    if any(type(v) is list for v in values):  # a server that answers arrays: take them as they come
        return list_column(where, name, values)
    bad = next((i for i, v in enumerate(values) if type(v) is not str or v[:1] != "[" or v[-1:] != "]"), None)
    if bad is not None:
        raise StoreError(f"{where}: column {name!r} row {bad} is {str(values[bad])[:80]!r}, not a list")
    bodies = [v[1:-1] for v in values if len(v) > 2]
    if not bodies:
        return np.zeros(0, dtype=np.int64)
    body = ", ".join(bodies)
    count = body.count(", ") + 1
    if _INT.fullmatch(body[: body.find(", ")] if count > 1 else body):
        try:
            ints = np.fromstring(body, dtype=np.int64, sep=",")
        except ValueError:
            ints = np.zeros(0, dtype=np.int64)
        if len(ints) != count:
            raise StoreError(
                f"{where}: column {name!r} mixes integers with other items (null, float or text); "
                "a columnar read takes integer or string lists: wrap items in coalesce()/toInteger()"
            )
        return ints
    return np.array(body.split(", "), dtype=object)


def _text_tuples(where: str, name: str, values: list[Any], width: int) -> tuple[Column, Column]:
    """Lists of integer lists answered as text (``[[1, 2], [3, 4]]``): one C-speed parse of every row.

    One ``collect([...])`` per row costs the store far less than one ``collect`` per value
    (decision 0015); the text is the same numbers with one more bracket level to strip.
    """
    if any(type(v) is list for v in values):  # a server that answers arrays: take them as they come
        return tuple_column(where, name, values, width)
    bad = next((i for i, v in enumerate(values) if type(v) is not str or not _TUPLES.fullmatch(v[:2] + v[-2:])), None)
    if bad is not None:
        raise StoreError(f"{where}: column {name!r} row {bad} is {str(values[bad])[:80]!r}, not a list of lists")
    counts = np.fromiter((v.count("], [") + 1 if len(v) > 2 else 0 for v in values), dtype=np.int64, count=len(values))
    body = ", ".join([v[2:-2] for v in values if len(v) > 2]).replace("], [", ", ")
    expected = width * int(counts.sum())
    ints = np.zeros(0, dtype=np.int64)
    if body and _INT.fullmatch(body[: body.find(",")] if "," in body else body):
        with contextlib.suppress(ValueError):  # a short parse is caught by the count below
            ints = np.fromstring(body, dtype=np.int64, sep=",")
    if len(ints) != expected or body.count(",") + bool(body) != expected:
        raise StoreError(
            f"{where}: column {name!r} does not parse as {counts.sum()} lists of {width} integers (a null, "
            "float or text item, or a list of another width): wrap items in coalesce() or toInteger()"
        )
    return ints.reshape(-1, width), counts


#: The ends of a list-of-lists text ("[[" + "]]") or an empty list ("[]" twice over).
_TUPLES = re.compile(r"\[\[\]\]|\[\]\[\]")


def _index_target(stmt: str) -> tuple[str, tuple[str, ...]]:
    """(label, properties) of ``CREATE INDEX FOR (x:Label) ON (x.a, x.b)``."""
    label = stmt.split(":", 1)[1].split(")", 1)[0].strip()
    inner = stmt.rsplit("ON", 1)[1].strip().strip("()")
    return label, tuple(p.strip().split(".", 1)[1] for p in inner.split(","))


def _plain(value: Any) -> Any:
    """FalkorDB Node/Edge objects become property dicts; everything else is already plain."""
    props = getattr(value, "properties", None)
    if isinstance(props, dict):
        return dict(props)
    return value
