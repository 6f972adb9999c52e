from datetime import timedelta

from analytics.platform.collectors import PeriodicJob

PERIODIC_JOBS = [
    PeriodicJob(
        name="check alerts",
        task="alerts.check_alerts",
        every=timedelta(seconds=60),
        description="Evaluate every enabled alert rule; open and resolve incidents; end expired silences.",
    ),
    PeriodicJob(
        name="send notifications",
        task="alerts.send_notifications",
        every=timedelta(seconds=15),
        description="Plan the notifications incidents call for (firing, repeat, resolved) and send what is due.",
    ),
]
