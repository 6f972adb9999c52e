"""Analytics' part of cleanup_old_data: raw events past ANALYTICS_DB_RETENTION_DAYS, rollups past theirs."""

from datetime import timedelta

from django.conf import settings

from analytics.models import MetricEvent, RecommendationLog, SkillExecution
from analytics.services.rollups import cleanup_rollups

DELETE_BATCH = 10_000


def delete_in_batches(queryset, batch: int | None = None) -> int:
    """Delete in bounded batches so that no statement holds long locks on a big table."""
    batch = batch or DELETE_BATCH
    removed = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            return removed
        removed += queryset.model.objects.filter(pk__in=ids).delete()[0]


def cleanup(now) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)
    removed = {
        "metric events": delete_in_batches(MetricEvent.objects.filter(timestamp__lt=cutoff)),
        # Ratings, installs and explicit health scores are all-time figures and stay.
        "skill executions": delete_in_batches(SkillExecution.objects.filter(timestamp__lt=cutoff)),
        # Their follow-up is read from skill_usage, which is gone past the same cutoff.
        "recommendation log": delete_in_batches(RecommendationLog.objects.filter(timestamp__lt=cutoff)),
    }
    removed.update(cleanup_rollups(now))
    return removed
