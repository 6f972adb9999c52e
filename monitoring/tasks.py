"""Celery tasks: thin wrappers over the monitoring services."""

from celery import shared_task

from monitoring.services import reports, runner


@shared_task(name="monitoring.run_health_checks")
def run_health_checks() -> dict[str, int]:
    return runner.run_due_checks()


@shared_task(name="monitoring.roll_up_daily_sla")
def roll_up_daily_sla() -> int:
    return reports.roll_up_daily_sla()
