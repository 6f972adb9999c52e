"""Analytics' part of cleanup_old_data: raw events past ANALYTICS_DB_RETENTION_DAYS."""

from datetime import timedelta

from django.conf import settings

from analytics.models import MetricEvent

DELETE_BATCH = 10_000


def delete_in_batches(queryset, batch: int = DELETE_BATCH) -> int:
    """Delete in bounded batches so no statement holds long locks on a big table."""
    removed = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return removed
        removed += queryset.model.objects.filter(pk__in=ids).delete()[0]


def cleanup(now) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)
    return {"metric events": delete_in_batches(MetricEvent.objects.filter(timestamp__lt=cutoff))}
