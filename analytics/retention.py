"""Analytics' part of cleanup_old_data: raw events past ANALYTICS_DB_RETENTION_DAYS, rollups past theirs."""

from datetime import timedelta

from django.conf import settings

from analytics.models import MetricEvent, OtlpCumulativeState, RecommendationLog, SkillExecution
from analytics.platform.batched import delete_in_batches
from analytics.services.rollups import cleanup_rollups

DELETE_BATCH = 10_000


def cleanup(now) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)
    removed = {
        "metric events": delete_in_batches(MetricEvent.objects.filter(timestamp__lt=cutoff), DELETE_BATCH),
        # Ratings, installs and explicit health scores are all-time figures and stay.
        "skill executions": delete_in_batches(SkillExecution.objects.filter(timestamp__lt=cutoff), DELETE_BATCH),
        # Their follow-up is read from skill_usage, which is gone past the same cutoff.
        "recommendation log": delete_in_batches(RecommendationLog.objects.filter(timestamp__lt=cutoff),
                                                DELETE_BATCH),
        # An OTLP series silent for the whole retention period starts afresh if it ever reports again.
        "otlp cumulative states": delete_in_batches(OtlpCumulativeState.objects.filter(updated_at__lt=cutoff),
                                                    DELETE_BATCH),
    }
    removed.update(cleanup_rollups(now))
    return removed
