"""Fast bulk inserts for the narrow event and rollup tables, and a bulk read of columns on PostgreSQL.

Django's ``bulk_create`` prepares every value of every row through the field
machinery, which costs more than the database's own work for narrow rows. Here
PostgreSQL gets ``COPY ... FROM STDIN`` and SQLite a single ``executemany``, both
on the connection of the current transaction. ``read_columns`` reads a query's
columns as numpy arrays on PostgreSQL. Their statements bypass Django's cursor
wrapper (a COPY; a binary result): each is logged here as Django logs statements
(``connection.queries`` under DEBUG, CaptureQueriesContext).
"""

from __future__ import annotations

import time

import numpy as np
import psycopg
from django.db import connection


def _log(sql: str, started: float) -> None:
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def read_columns(sql: str, params: list, types: list[str]) -> list[np.ndarray]:
    """The columns of the query ``sql`` as numpy arrays, on PostgreSQL; ``types`` are theirs ("int8" or
    "float8"), none NULL. The server aggregates each column into one array sent in binary (array_send),
    which numpy decodes whole: fetching millions of rows as Python tuples cost more than the query."""
    columns = ", ".join(f"array_send(array_agg(c{index}))" for index in range(len(types)))
    names = ", ".join(f"c{index}" for index in range(len(types)))
    statement = f"SELECT {columns} FROM ({sql}) AS rows ({names})"
    started = time.monotonic()
    connection.ensure_connection()
    # Django's cursors bind parameters client-side, which cannot ask for binary results: a plain psycopg
    # cursor on the same connection (and so in the same transaction).
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(statement, params, binary=True)
        arrays = cursor.fetchone()
    assert arrays is not None  # an aggregate without GROUP BY always has its row
    _log(statement, started)
    return [_decode_array(blob, kind) for blob, kind in zip(arrays, types, strict=True)]


# array_send of a one-dimensional array: ndim, has-NULL flag, element type, size, lower bound (int32 each),
# then every element as its length (int32) and its big-endian value.
_ARRAY_HEADER = 20
_ELEMENTS = {"int8": np.dtype([("length", ">i4"), ("value", ">i8")]),
             "float8": np.dtype([("length", ">i4"), ("value", ">f8")])}


def _decode_array(blob: bytes | None, kind: str) -> np.ndarray:
    native = np.int64 if kind == "int8" else np.float64
    if blob is None:  # array_agg of no rows
        return np.empty(0, native)
    ndim, has_null = int.from_bytes(blob[0:4], "big"), int.from_bytes(blob[4:8], "big")
    elements = np.frombuffer(blob, dtype=_ELEMENTS[kind], offset=_ARRAY_HEADER)
    if ndim != 1 or has_null or not (elements["length"] == 8).all():
        raise ValueError(f"not a one-dimensional {kind} array without NULLs")
    return elements["value"].astype(native)


def insert_rows(table: str, columns: list[str], rows: list[tuple], types: list[str] | None = None) -> int:
    """Insert ``rows`` (values already in database form: datetimes aware, bytes for binary).

    ``types``, the columns' PostgreSQL types (``["int8", "timestamptz", ...]``), make the COPY binary: a
    quarter cheaper a row than text. Each value must then be of its column's type (an int for int8, a
    float for float8, None for NULL): the server does not convert binary values."""
    if not rows:
        return 0
    column_sql = ", ".join(columns)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The Django cursor wraps psycopg's; COPY runs in the current transaction.
            statement = f"COPY {table} ({column_sql}) FROM STDIN" + (" (FORMAT BINARY)" if types else "")
            started = time.monotonic()
            with cursor.cursor.copy(statement) as copy:
                if types:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        _log(statement, started)
        return len(rows)
    adapt = connection.ops.adapt_datetimefield_value
    prepared = [tuple(adapt(v) if hasattr(v, "tzinfo") else v for v in row) for row in rows]
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({column_sql}) VALUES ({placeholders})", prepared)
    return len(rows)
