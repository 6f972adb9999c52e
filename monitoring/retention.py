"""Monitoring's part of cleanup_old_data: the raw check history, after its days are summarised."""

from monitoring.models import HealthCheck
from monitoring.services.reports import retention_cutoff, roll_up_daily_sla

BATCH_SIZE = 5000


def cleanup(now) -> dict[str, int]:
    # Summaries first: the daily SLA figures must survive the rows they come from.
    roll_up_daily_sla(now)
    cutoff = retention_cutoff(now)
    removed = 0
    while True:
        batch = list(HealthCheck.objects.filter(checked_at__lt=cutoff).values_list("pk", flat=True)[:BATCH_SIZE])
        if not batch:
            break
        removed += HealthCheck.objects.filter(pk__in=batch).delete()[0]
    return {"health checks": removed}

