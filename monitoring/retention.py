"""Monitoring's part of cleanup_old_data: the raw check history, after its days are summarised."""

from analytics.platform.batched import delete_in_batches
from monitoring.models import HealthCheck
from monitoring.services.reports import retention_cutoff, roll_up_daily_sla

BATCH_SIZE = 5000


def cleanup(now) -> dict[str, int]:
    # Summaries first: the daily SLA figures must survive the rows they come from.
    roll_up_daily_sla(now)
    removed = delete_in_batches(HealthCheck.objects.filter(checked_at__lt=retention_cutoff(now)), BATCH_SIZE)
    return {"health checks": removed}
