"""Celery tasks: thin wrappers over the monitoring services."""

import logging
from dataclasses import asdict

from celery import shared_task
from django.conf import settings

from monitoring import otlp_push
from monitoring.services import reports, runner

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.run_health_checks")
def run_health_checks() -> dict[str, int]:
    return runner.run_due_checks()


@shared_task(name="monitoring.roll_up_daily_sla")
def roll_up_daily_sla() -> int:
    return reports.roll_up_daily_sla()


@shared_task(name="monitoring.push_otlp_aggregates")
def push_otlp_aggregates() -> dict:
    if not settings.OTLP_SERVER_PUSH:
        return {"skipped": "OTLP_SERVER_PUSH is off"}
    try:
        return asdict(otlp_push.push_aggregates())
    except otlp_push.OtlpPushError as error:
        logger.warning("push_otlp: %s", error)  # the next run tries again with the then current figures
        return {"error": str(error)}
