"""Alerting's part of cleanup_old_data.

Incidents are kept for ever, with their whole timeline: they are the record of what happened. What
goes after ANALYTICS_DB_RETENTION_DAYS are the evaluator's moves that never became an incident
(a group pending, then recovering): a flapping rule writes many, and they explain nothing that
anyone will ask about later.
"""

from datetime import timedelta

from django.conf import settings

from alerts.models import IncidentEvent
from analytics.platform.batched import delete_in_batches

DELETE_BATCH = 5000


def cleanup(now) -> dict[str, int]:
    cutoff = now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS)
    stale = IncidentEvent.objects.filter(incident__isnull=True, at__lt=cutoff)
    return {"alert moves without incident": delete_in_batches(stale, DELETE_BATCH)}
