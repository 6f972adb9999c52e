from datetime import timedelta

from django.conf import settings

from analytics.platform.collectors import PeriodicJob

PERIODIC_JOBS = [
    PeriodicJob(
        name="run health checks",
        task="monitoring.run_health_checks",
        every=timedelta(seconds=30),
        description="Run every service check that is due (each service has its own interval).",
    ),
    PeriodicJob(
        name="roll up daily SLA",
        task="monitoring.roll_up_daily_sla",
        crontab={"minute": "7", "hour": "0"},
        description="Store each service's SLA figures of the closed UTC days; they outlive the check history.",
    ),
]

if settings.OTLP_SERVER_PUSH:
    PERIODIC_JOBS.append(PeriodicJob(
        name="push metrics over OTLP",
        task="monitoring.push_otlp_aggregates",
        every=timedelta(seconds=settings.OTLP_PUSH_INTERVAL),
        description="Push the families of /metrics to OTLP_ENDPOINT (OTLP_SERVER_PUSH, docs/exporters.md).",
    ))
