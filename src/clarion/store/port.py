"""The graph store port: the small protocol every adapter implements.

Methods are synchronous (both drivers are sync); async callers run them in a thread pool.
Statements are named files in ``cypher/`` (see ``clarion.store.cypher``), never text built
from input.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from itertools import chain
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Row = dict[str, Any]
#: One result column as a 1-D array: int64 for integers, object (holding str) for strings.
Column = npt.NDArray[Any]
#: How an adapter turns one list column (the values of every row) into a flat Column.
Flatten = Callable[[str, str, list[Any]], Column]


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

    def read_columns(
        self,
        statement: str,
        params: Mapping[str, Any] | None = None,
        *,
        lists: Collection[str] = (),
        tuples: Mapping[str, int] | None = None,
    ) -> dict[str, Column]:
        """Columnar bulk read for scans of millions of values: each RETURN column as one 1-D array.

        A column named in ``lists`` holds one list per row (``collect(...)``), flattened in row
        order; the others hold one value per row. Integers give int64 arrays, strings object
        arrays of str; nulls and other types raise StoreError (wrap values in ``coalesce()``).
        List items must not contain ", " (FalkorDB answers lists as text), and every list
        column must flatten to the same length (they come from one ``collect`` each).

        A column named in ``tuples`` (name -> width) holds per row a list of integer lists of that
        width (``collect([a, b, c])``: one aggregation instead of one per value, far cheaper for
        the store); it comes back as one int64 array of shape (tuples, width) in row order, and
        ``"<name>.rows"`` says how many tuples each row held. Its tuples count as its list length.
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


def scalar_column(where: str, name: str, values: list[Any]) -> Column:
    """One value per row as an int64 or a str (object) array; anything else names the column and row."""
    if all(type(v) is int for v in values):
        return np.array(values, dtype=np.int64)
    if all(type(v) is str for v in values):
        return np.array(values, dtype=object)
    raise _refused(where, name, values)


def list_column(where: str, name: str, lists: list[list[Any]]) -> Column:
    """Lists per row (``collect()``), flattened in row order; items must be all int or all str."""
    flat = list(chain.from_iterable(lists))
    if all(type(v) is int for v in flat):
        return np.array(flat, dtype=np.int64)
    if all(type(v) is str for v in flat):
        return np.array(flat, dtype=object)
    raise _refused(where, name, flat)


def _refused(where: str, name: str, values: list[Any]) -> StoreError:
    first = type(values[0])
    bad = next(i for i, v in enumerate(values) if type(v) is not first or first not in (int, str))
    return StoreError(
        f"{where}: column {name!r} item {bad} is {values[bad]!r}; a columnar read takes all-integer or "
        "all-string columns (wrap values in coalesce() or toInteger())"
    )


#: How an adapter turns one tuple column (the values of every row, a width) into (tuples, counts per row).
FlattenTuples = Callable[[str, str, list[Any], int], tuple[Column, Column]]


def tuple_column(where: str, name: str, lists: list[Any], width: int) -> tuple[Column, Column]:
    """Lists of integer tuples per row (real lists): a (tuples, width) int64 array and the tuples per row."""
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = list(chain.from_iterable(chain.from_iterable(lists)))
    if len(flat) != width * int(counts.sum()) or not all(type(v) is int for v in flat):
        bad = next((t for row in lists for t in row if len(t) != width or not all(type(v) is int for v in t)), None)
        raise StoreError(
            f"{where}: column {name!r} holds {bad!r}; a tuple column takes lists of {width} integers "
            "(wrap values in coalesce() or toInteger())"
        )
    return np.array(flat, dtype=np.int64).reshape(-1, width), counts


def columns_of(
    where: str,
    header: list[str],
    rows: list[list[Any]],
    lists: Collection[str],
    flatten: Flatten,
    tuples: Mapping[str, int] | None = None,
    flatten_tuples: FlattenTuples = tuple_column,
) -> dict[str, Column]:
    """Rows to columns, flattening those named in ``lists`` (and ``tuples``); list columns must agree in length."""
    tuples = tuples or {}
    unknown = sorted((set(lists) | set(tuples)) - set(header))
    if rows and unknown:
        raise StoreError(f"{where}: no columns {unknown} in the result (it has {header})")
    out = {}
    for j, name in enumerate(header):
        values = [r[j] for r in rows]
        if name in tuples:
            out[name], out[f"{name}.rows"] = flatten_tuples(where, name, values, tuples[name])
        else:
            out[name] = flatten(where, name, values) if name in lists else scalar_column(where, name, values)
    lengths = {name: len(out[name]) for name in (*lists, *tuples) if name in out}
    if len(set(lengths.values())) > 1:
        raise StoreError(
            f"{where}: list columns flatten to different lengths {lengths}; "
            "each must come from one collect() and hold no null"
        )
    return out
