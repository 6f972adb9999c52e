from datetime import timedelta

from analytics.platform.collectors import PeriodicJob

PERIODIC_JOBS = [
    PeriodicJob(
        name="check alerts",
        task="alerts.check_alerts",
        every=timedelta(seconds=60),
        description="Evaluate every enabled alert rule; open and resolve incidents; end expired silences.",
    ),
]
