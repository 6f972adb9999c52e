from datetime import timedelta

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
