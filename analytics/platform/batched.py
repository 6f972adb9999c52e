"""Deleting many rows of a big table without one long statement."""

from __future__ import annotations

DEFAULT_BATCH_SIZE = 5000


def delete_in_batches(queryset, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete the rows of ``queryset`` ``batch_size`` primary keys at a time; returns the rows deleted.

    Each batch is one short DELETE by primary key, so that no statement holds long locks on a
    big table. The count is Django's: rows that cascade with a batch are counted too.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    removed = 0
    while True:
        batch = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not batch:
            return removed
        removed += queryset.model._base_manager.filter(pk__in=batch).delete()[0]


def delete_older_by_row_id(table: str, cutoff, batch_size: int, column: str = "timestamp") -> int:
    """Delete the rows of ``table`` whose ``column`` is before ``cutoff``, ``batch_size`` at a time, by physical
    row id (ctid on PostgreSQL, rowid on SQLite): each batch is one index range read and one statement, for
    tables whose primary key is composite or that have none. Returns the rows deleted."""
    from django.db import connection

    oldest = f'SELECT {{row}} FROM {table} WHERE "{column}" < %s LIMIT %s'
    if connection.vendor == "postgresql":  # = ANY(ARRAY(...)): a TID scan, where IN (...) would join
        statement = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({oldest.format(row='ctid')}))"
    else:
        statement = f"DELETE FROM {table} WHERE rowid IN ({oldest.format(row='rowid')})"
    removed = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(statement, [connection.ops.adapt_datetimefield_value(cutoff), batch_size])
            removed += cursor.rowcount
            if cursor.rowcount < batch_size:
                return removed
