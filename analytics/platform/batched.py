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
