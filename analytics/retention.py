"""Analytics' part of cleanup_old_data: raw events past ANALYTICS_DB_RETENTION_DAYS, rollups past theirs."""

from datetime import UTC, timedelta

from django.conf import settings

from analytics.models import (
    MetricEvent,
    MetricEventKey,
    OtlpCumulativeState,
    RecommendationLog,
    SkillExecution,
    SkillUsageDay,
    SkillUserDay,
    SkillUserLastUse,
)
from analytics.platform.batched import delete_in_batches, delete_older_by_row_id
from analytics.services import partitions
from analytics.services.rollups import cleanup_rollups

DELETE_BATCH = 10_000


def cleanup(now) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)
    removed = {
        "metric events": _metric_events(cutoff),
        # The event ids go with their events: an id is "already stored" as long as its event is.
        "metric event ids": _metric_event_keys(cutoff),
        # Ratings, installs and explicit health scores are all-time figures and stay.
        "skill executions": delete_in_batches(SkillExecution.objects.filter(timestamp__lt=cutoff), DELETE_BATCH),
        # The whole days before the cutoff; the cutoff's own day keeps its row for its executions left.
        "skill usage days": delete_in_batches(SkillUsageDay.objects.filter(day__lt=cutoff.astimezone(UTC).date()),
                                              DELETE_BATCH),
        "skill user days": delete_in_batches(SkillUserDay.objects.filter(day__lt=cutoff.astimezone(UTC).date()),
                                             DELETE_BATCH),
        "skill last uses": delete_in_batches(
            SkillUserLastUse.objects.filter(last_day__lt=cutoff.astimezone(UTC).date()), DELETE_BATCH),
        # Their follow-up is read from skill_usage, which is gone past the same cutoff.
        "recommendation log": delete_in_batches(RecommendationLog.objects.filter(timestamp__lt=cutoff),
                                                DELETE_BATCH),
        # An OTLP series silent for the whole retention period starts afresh if it ever reports again.
        "otlp cumulative states": delete_in_batches(OtlpCumulativeState.objects.filter(updated_at__lt=cutoff),
                                                    DELETE_BATCH),
    }
    removed.update(cleanup_rollups(now))
    # The daily run also creates the partitions ahead, for deployments that run the rollups from cron.
    partitions.ensure_partitions(now)
    return removed


def _metric_events(cutoff) -> int:
    """PostgreSQL: whole day partitions dropped, the rest deleted (analytics/services/partitions.py); SQLite:
    deleted in batches."""
    if partitions.is_partitioned():
        return partitions.remove_events_before(cutoff, DELETE_BATCH)
    return delete_in_batches(MetricEvent.objects.filter(timestamp__lt=cutoff), DELETE_BATCH)


def _metric_event_keys(cutoff) -> int:
    """By physical row id: the key table's primary key is composite."""
    return delete_older_by_row_id(MetricEventKey._meta.db_table, cutoff, DELETE_BATCH)
