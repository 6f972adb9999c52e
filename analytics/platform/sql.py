"""Small pieces of hand-written SQL shared by the query layer."""

from __future__ import annotations

from django.db import connection


def one_of(column: str, values) -> tuple[str, list]:
    """``column`` is one of ``values``: (SQL, params).

    On PostgreSQL ``column = ANY(%s)`` with the values as one array: a statement with hundreds of ``%s`` is
    too long for psycopg's statement cache and was parsed again on every execution (10 ms a query for a
    page's series lists). SQLite has no arrays: ``column IN (%s, …)``.
    """
    values = list(values)
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [values]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values
